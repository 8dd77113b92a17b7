/*
 * hipaa_guard.h
 *		Module-wide state: whether the library was preloaded.
 */
#ifndef HG_HIPAA_GUARD_H
#define HG_HIPAA_GUARD_H

extern void hg_require_preloaded(void);

#endif							/* HG_HIPAA_GUARD_H */
