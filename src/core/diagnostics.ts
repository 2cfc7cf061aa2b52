/**
 * Low-level events on node:diagnostics_channel (as undici's `undici:*` channels), for tools that want to observe a
 * proxy without being an addon: APMs, tracers, debugging sessions. Publishing checks `hasSubscribers` first, so a
 * proxy nobody watches pays one property read per event.
 *
 * @example
 * import diagnostics from 'node:diagnostics_channel';
 * diagnostics.subscribe('getaway:flow:end', ({ flow }) => console.log(flow.id, flow.error?.type));
 */
import { channel } from 'node:diagnostics_channel';
import type { ClientInfo } from './connection.js';
import type { Flow } from './flow.js';

export const diagnosticChannels = {
  /** `{ client }`: a client connection was accepted (before `clientConnected`). */
  clientConnect: channel('getaway:client:connect'),
  /** `{ flow }`: a request or tunnel became a flow. */
  flowStart: channel('getaway:flow:start'),
  /** `{ flow }`: a flow ended (after its closing hook); `flow.error` says whether it failed. */
  flowEnd: channel('getaway:flow:end'),
} as const;

export function publishClientConnect(client: ClientInfo): void {
  if (diagnosticChannels.clientConnect.hasSubscribers) diagnosticChannels.clientConnect.publish({ client });
}

export function publishFlow(which: 'flowStart' | 'flowEnd', flow: Flow): void {
  const target = diagnosticChannels[which];
  if (target.hasSubscribers) target.publish({ flow });
}
