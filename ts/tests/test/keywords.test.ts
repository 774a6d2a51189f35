/**
 * `schemas/keywords.wsp` over a real connection: types, fields, methods and parameters named like
 * JavaScript/TypeScript (and Rust) keywords work end to end through the generated code.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplicationError } from '@wsp/runtime';
import * as kw from '../../generated/keywords.js';
import { collect, newClient, sleep, startServer, within } from './helpers.js';

const value: kw.type_ = {
  type: 't', self: -1, fn: true, match: 255, class: 'c', function: 0.5, default: 'd', delete: false, new: 2n ** 63n - 1n,
  yield: 65535, async: true, await: false, reserved: 'r', stream: 's', rpc: 'r', notify: 'n', client: 'c', throws: 't',
  list: 'l', map: 'm', super: -128, crate: -32768, mod: 2n ** 64n - 1n, impl: new Uint8Array([7]), trait: 1.5, loop: true,
  where: 'w', let: 'l', const: 'c', static: 's', var: 'v', in: 'i', of: 'o', instanceof: 'i', typeof: 't', void: 'v',
  null: 'n', undefined: 'u', this: 't', enum: 'e', struct: 's', interface: 'i', package: 'p', import: 'i', export: 'e',
  extends: 'e', implements: 'i', return: 'r', break: 'b', continue: 'c', if: 'i', else: 'e', for: 'f', while: 'w',
  do: 'd', switch: 's', case: 'c', try: 't', catch: 'c', finally: 'f', throw: 't', unsafe: 'u', use: 'u', pub: 'p',
  ref: 'r', mut: 'm', move: 'm', dyn: 'd', abstract: 'a', macro: 'm', Result: 'R', Option: 'O', String: 'S', Vec: 'V',
  Box: 'B', Promise: 'P', Object: 'O',
};

test('keyword names round-trip in both directions', { timeout: 10_000 }, async () => {
  const { server, url } = await startServer();
  const seen: string[] = [];
  kw.serveFn(server, {
    async type(self, default_, ctx) {
      if (default_ === undefined) throw new ApplicationError<kw.async>({ $type: 'yield', type: self.type });
      // Calls back into the client: methods named `default`, `new`, `static`.
      const answer = await ctx.peer.default('in');
      ctx.peer.new(answer);
      const bytes = await collect(ctx.peer.static());
      return default_.$type === 'new' ? { $type: 'fn', self: answer, class: bytes.length } : default_;
    },
    *class(new_, delete_) {
      yield { ...value, type: new_, ...(delete_ === undefined ? {} : { class: delete_ }) };
    },
    function(yield_) {
      seen.push(`function ${yield_}`);
    },
    await(async) {
      seen.push(`await ${async}`);
    },
    self() {},
    match: (fn) => fn + 1,
    client(reserved) {
      seen.push(`client ${reserved}`);
    },
    reserved() {
      seen.push('reserved');
    },
  });
  const client = newClient(url);
  const received: string[] = [];
  kw.registerFnCallbacks(client, {
    default: (in_) => `${in_}!`,
    new: (class_) => void received.push(class_),
    *static() {
      yield 1;
      yield 2;
    },
  });
  try {
    await within(client.connect(), 3000, 'connect');
    const fn = new kw.FnClient(client);
    assert.deepEqual(await fn.type(value, { $type: 'new', delete: true }), { $type: 'fn', self: 'in!', class: 2 });
    assert.deepEqual(await fn.type(value, { $type: 'Self' }), { $type: 'Self' });
    const e = await fn.type(value).catch((x: unknown) => x);
    assert.ok(kw.isAsync(e));
    assert.deepEqual(e.details, { $type: 'yield', type: 't' });
    assert.deepEqual(await collect(fn.class('n', 'd')), [{ ...value, type: 'n', class: 'd' }]);
    const noClass: kw.type_ = { ...value, type: 'n' };
    delete noClass.class;
    assert.deepEqual(await collect(fn.class('n')), [{ ...noClass, class: 'c' }]);
    fn.function(8);
    await fn.await(true);
    await fn.self();
    assert.equal(await fn.match(41), 42);
    await fn.client(false);
    fn.reserved();
    await within(
      (async () => {
        while (seen.length < 4 || received.length < 2) await sleep(5);
      })(),
      3000,
      'notifications',
    );
    assert.deepEqual(seen.sort(), ['await true', 'client false', 'function 8', 'reserved']);
    assert.deepEqual(received, ['in!', 'in!']); // one per call of `type` with a default
  } finally {
    await client.close();
    await server.close();
  }
});
