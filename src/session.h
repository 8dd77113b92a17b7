/*
 * session.h
 *		Connection checks: hipaa_guard.require_ssl.
 */
#ifndef HG_SESSION_H
#define HG_SESSION_H

extern bool hg_require_ssl;

extern void hg_session_define_settings(void);
extern void hg_session_install_hooks(void);
extern void hg_session_warn_not_enforced(void);

#endif							/* HG_SESSION_H */
