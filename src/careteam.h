/*
 * careteam.h
 *		The hooks of careteam.c, which guard EXPLAIN ANALYZE and choose how
 *		the care-team list is read, and the setting of that choice.
 */
#ifndef HG_CARETEAM_H
#define HG_CARETEAM_H

extern bool hg_enable_care_bitmapscan;

extern void hg_careteam_install_hooks(void);

#endif							/* HG_CARETEAM_H */
