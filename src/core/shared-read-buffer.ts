/**
 * The one buffer every socket read through `onread` reads into (tunnels' ReadRelay, the plain-HTTP origin agent).
 * Safe to share because a read's callback runs to completion before any other read happens, and every reader
 * copies out (or hands to a parser that copies) what it needs before its callback returns.
 */

/** What Node's own stream reads ask for. */
export const READ_SIZE = 65536;

export const sharedReadBuffer = Buffer.allocUnsafe(READ_SIZE);
