import type { Addon } from './addon.js';
import { ProxyError } from './errors.js';
import { HOOK_NAMES, type HookName, type Hooks } from './hooks.js';

type Handler<K extends HookName> = { addon: Addon; fn: Hooks[K] };
type HandlerTable = { [K in HookName]: Array<Handler<K>> };

/**
 * Runs a hook across addons in order. Handler arrays are built once, so a hook no addon implements costs one
 * length check; a synchronous handler costs no microtask (only a returned thenable is awaited).
 */
export class HookRunner {
  readonly #handlers: HandlerTable;

  constructor(addons: readonly Addon[]) {
    const table = {} as Record<HookName, Array<Handler<HookName>>>;
    for (const name of HOOK_NAMES) {
      table[name] = [];
      for (const addon of addons) {
        const fn = addon[name];
        if (typeof fn === 'function') table[name].push({ addon, fn } as Handler<HookName>);
      }
    }
    this.#handlers = table as HandlerTable;
  }

  has(name: HookName): boolean {
    return this.#handlers[name].length > 0;
  }

  /**
   * Returns undefined when every handler finished synchronously, else a promise. A handler that throws a
   * `ProxyError` refuses the flow with it (its status, type and response fields: a 407 from proxy auth, a 403 from
   * a rule); anything else thrown surfaces as `ProxyError('proxy_internal_error')` naming the addon. Either way the
   * flow fails closed.
   */
  run<K extends HookName>(name: K, ...args: Parameters<Hooks[K]>): Promise<void> | undefined {
    const handlers = this.#handlers[name];
    for (let i = 0; i < handlers.length; i++) {
      const handler = handlers[i]!;
      let result: unknown;
      try {
        result = (handler.fn as (...a: unknown[]) => unknown).apply(handler.addon, args);
      } catch (err) {
        throw hookFailure(handler.addon, name, err);
      }
      if (isThenable(result)) return this.#continue(name, args, i, result);
    }
    return undefined;
  }

  /**
   * Runs the synchronous `dialing` hook. A `ProxyError` a handler throws is its refusal and is returned as it is
   * (marked refusedByProxy); any other throw, or a handler that returns a promise, is a failure of the addon, also
   * marked so: a policy that broke must not be routed around through an upstream.
   */
  checkDestination(...args: Parameters<Hooks['dialing']>): ProxyError | undefined {
    const handlers = this.#handlers.dialing;
    for (let i = 0; i < handlers.length; i++) {
      const handler = handlers[i]!;
      let result: unknown;
      try {
        result = handler.fn.apply(handler.addon, args);
      } catch (err) {
        return hookFailure(handler.addon, 'dialing', err).refusingDestination();
      }
      if (isThenable(result)) {
        return hookFailure(handler.addon, 'dialing', new Error('returned a promise; dialing hooks must decide synchronously')).refusingDestination();
      }
    }
    return undefined;
  }

  async #continue<K extends HookName>(
    name: K,
    args: Parameters<Hooks[K]>,
    index: number,
    pending: PromiseLike<unknown>,
  ): Promise<void> {
    const handlers = this.#handlers[name];
    try {
      await pending;
    } catch (err) {
      throw hookFailure(handlers[index]!.addon, name, err);
    }
    for (let i = index + 1; i < handlers.length; i++) {
      const handler = handlers[i]!;
      try {
        await (handler.fn as (...a: unknown[]) => unknown).apply(handler.addon, args);
      } catch (err) {
        throw hookFailure(handler.addon, name, err);
      }
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function hookFailure(addon: Addon, hook: HookName, err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ProxyError('proxy_internal_error', `addon "${addon.name}" failed in ${hook}: ${message}`, { cause: err });
}

