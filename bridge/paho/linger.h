/* bridge/paho/linger.h — graceful TCP close for Paho's connections (see linger.c for why). */
#pragma once

/**
 * Startup, on the service thread, before Paho starts its threads. From now on a shutdown(SHUT_WR)
 * made by another thread waits (up to 100 ms) for the peer to close its side, reading what it
 * still sends, so that the close() that follows does not reset the connection.
 */
void linger_init(void);
