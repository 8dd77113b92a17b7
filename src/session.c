/*
 * session.c
 *		Connection checks: hipaa_guard.require_ssl, which rejects connections
 *		without TLS for members of the hipaa_guard group roles.
 *
 * The check runs in ClientAuthentication_hook, after the client has
 * authenticated and before the backend selects its database.  At that point
 * the backend is inside a transaction and has relcache entries for the shared
 * catalogs only.  pg_authid and pg_auth_members are shared, so role names and
 * memberships can be looked up, as hba.c does for "+group" lines in
 * pg_hba.conf.
 *
 * The setting is PGC_SIGHUP, not PGC_SUSET.  The check reads it before the
 * session applies any setting of its own (ALTER ROLE ... SET, ALTER DATABASE
 * ... SET, "options" in the connection request), so only the server-wide
 * value from postgresql.conf or ALTER SYSTEM is ever in effect.  PGC_SIGHUP
 * makes PostgreSQL reject those other ways of setting it instead of accepting
 * values that the check would never read.
 *
 * Unix-domain sockets cannot carry TLS, so a member connecting through one
 * is rejected like any other connection without TLS.  GSSAPI-encrypted
 * connections are rejected too: the setting requires TLS specifically.
 * Background workers and parallel workers never pass through client
 * authentication and are not checked.
 */
#include "postgres.h"

#include <sys/socket.h>

#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"

#include "session.h"

bool		hg_require_ssl = false;

static ClientAuthentication_hook_type prev_client_authentication_hook = NULL;

/*
 * Group roles whose members need TLS.  The error detail names the first one,
 * in this order, that the role is a member of.
 */
static const char *const protected_group_roles[] = {
	"hipaa_admin",
	"hipaa_clinician",
	"hipaa_auditor",
	"hipaa_app",
};

/*
 * Return the first group role of protected_group_roles that roleid is a
 * member of, directly or through other roles, or NULL if none.  Superuser
 * status does not count as membership.  Group roles that do not exist (not
 * created yet, or dropped) are skipped.
 */
static const char *
protected_group_of(Oid roleid)
{
	for (size_t i = 0; i < lengthof(protected_group_roles); i++)
	{
		Oid			group_oid = get_role_oid(protected_group_roles[i], true);

		if (OidIsValid(group_oid) && is_member_of_role_nosuper(roleid, group_oid))
			return protected_group_roles[i];
	}
	return NULL;
}

/*
 * Reject an authenticated connection without TLS when hipaa_guard.require_ssl
 * is on and the role is a member of a protected group role.  ereport(FATAL)
 * ends the backend and sends the message to the client.
 */
static void
check_connection_tls(Port *port, int status)
{
	Oid			roleid;
	const char *group;

	if (prev_client_authentication_hook)
		prev_client_authentication_hook(port, status);

	if (status != STATUS_OK || !hg_require_ssl || port->ssl_in_use)
		return;

	/*
	 * With trust authentication a role that does not exist gets this far;
	 * InitPostgres rejects it right after.
	 */
	roleid = get_role_oid(port->user_name, true);
	if (!OidIsValid(roleid))
		return;

	group = protected_group_of(roleid);
	if (group == NULL)
		return;

	/* The hint differs because a Unix-domain socket cannot use TLS at all. */
	ereport(FATAL,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("connection without TLS rejected for role \"%s\"",
					port->user_name),
			 errdetail("hipaa_guard.require_ssl is on, and role \"%s\" is a member of \"%s\".",
					   port->user_name, group),
			 port->raddr.addr.ss_family == AF_UNIX ?
			 errhint("Connect over TCP/IP with sslmode=require or stronger, because Unix-domain sockets cannot use TLS.") :
			 errhint("Connect with sslmode=require or stronger.")));
}

/*
 * Define hipaa_guard.require_ssl.  It is defined even when the library is not
 * preloaded, so that SHOW works and a wrong value in postgresql.conf is
 * reported, although only a preloaded library checks connections.
 */
void
hg_session_define_settings(void)
{
	DefineCustomBoolVariable("hipaa_guard.require_ssl",
							 "Rejects connections without TLS for members of the hipaa_guard group roles.",
							 "Applies to members of hipaa_admin, hipaa_clinician, hipaa_auditor and hipaa_app, directly or through other roles, "
							 "including connections through Unix-domain sockets. Takes effect only when hipaa_guard is in shared_preload_libraries.",
							 &hg_require_ssl, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/* Install the connection check.  Called only while preloading the library. */
void
hg_session_install_hooks(void)
{
	prev_client_authentication_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = check_connection_tls;
}

/*
 * Warn when hipaa_guard.require_ssl is on in a backend that loaded the
 * library after start-up, because then no connection is checked.
 */
void
hg_session_warn_not_enforced(void)
{
	if (hg_require_ssl)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hipaa_guard.require_ssl is on but not enforced"),
				 errdetail("Connections are checked only when hipaa_guard is loaded via \"shared_preload_libraries\"."),
				 errhint("Add hipaa_guard to shared_preload_libraries in postgresql.conf and restart the server.")));
}
