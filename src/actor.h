/*
 * actor.h
 *		The verified end-user identity (the actor) of applications that
 *		share one database login, and the second-factor rule of decrypt().
 */
#ifndef HG_ACTOR_H
#define HG_ACTOR_H

#include "postgres.h"

/* Settings, defined in hipaa_guard.c. */
extern char *hg_token_issuer;
extern char *hg_token_audience;
extern char *hg_token_signing_key;
extern int	hg_token_leeway;
extern bool hg_require_mfa;

extern void hg_actor_init(void);
extern void hg_actor_preload_init(void);
extern Size hg_actor_shmem_size(void);
extern void hg_actor_shmem_startup(void);
extern void hg_check_second_factor(void);
extern const char *hg_actor_id(void);
extern const char *hg_actor_purpose_text(void);

/*
 * Raise an error unless the actor may decrypt: when hipaa_guard.require_mfa
 * is on, only an actor with a second authentication factor may.  Costs one
 * test of a bool while the setting is off.
 */
static inline void
hg_require_second_factor(void)
{
	if (hg_require_mfa)
		hg_check_second_factor();
}

#endif							/* HG_ACTOR_H */
