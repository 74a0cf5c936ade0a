/*
 * bridge/notify.c — sd_notify for the systemd unit's Type=notify: the unit counts as started only
 * once the bridge listens, and as stopping while it drains. Built without libsystemd (or run
 * without $NOTIFY_SOCKET, e.g. from a shell) these do nothing.
 */
#include "notify.h"

#include "buildconf.h"

#if MWB_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

/*
 * Results are not looked at: outside systemd nobody listens, and a READY=1 systemd never got shows
 * there as a start-up timeout with its own report.
 */
void notify_ready(const char *listen)
{
#if MWB_HAVE_SYSTEMD
	(void)sd_notifyf(0, "READY=1\nSTATUS=listening on %s", listen);
#else
	(void)listen;
#endif
}

void notify_stopping(void)
{
#if MWB_HAVE_SYSTEMD
	(void)sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
#endif
}
