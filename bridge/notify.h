/* bridge/notify.h — tells systemd how the daemon is doing (Type=notify); does nothing elsewhere. */
#pragma once

/** Main thread, once the listener is up: READY=1, with @listen in the status line. */
void notify_ready(const char *listen);

/** Main thread, when a shutdown begins: STOPPING=1. */
void notify_stopping(void);
