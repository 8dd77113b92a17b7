/*
 * hipaa_guard install script, assembled by the Makefile from the parts in src/sql.
 * Every name is schema-qualified; SECURITY DEFINER functions pin search_path.
 */
\echo Use "CREATE EXTENSION hipaa_guard" to load this file. \quit
