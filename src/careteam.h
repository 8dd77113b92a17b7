/*
 * careteam.h
 *		The hook of careteam.c that guards EXPLAIN ANALYZE.
 */
#ifndef HG_CARETEAM_H
#define HG_CARETEAM_H

extern void hg_careteam_install_hooks(void);

#endif							/* HG_CARETEAM_H */
