import { OpenFeatureEventEmitter } from '@openfeature/server-sdk';
import { FlagSnapshot } from '@rollgate/core';
import { ChangeStream, OfrepEvaluator } from '@rollgate/server';

// Calls shaped for the earlier API (a bare context, a ticket for nobody) fail loudly: evaluating
// without the identity's owned names, or pooling every caller under one tag, would be silent.

it('refuses to evaluate for a bare context instead of the verified identity', () => {
  const evaluator = new OfrepEvaluator({ source: { snapshot: FlagSnapshot.empty() } });
  const bare = { targetingKey: 'bo', roles: [] };
  expect(() => evaluator.bulk(bare as never, undefined, undefined)).toThrow(new TypeError('ofrep: evaluate for the verified Identity ({ context, mappedNames }), not a bare context'));
  expect(() => evaluator.single('x', bare as never, {})).toThrow(TypeError);
  expect(evaluator.bulk({ context: bare, mappedNames: ['targetingKey', 'roles', 'tenant'] }, undefined, undefined).status).toBe(200);
});

it('issues stream tickets only for a named caller', () => {
  const stream = new ChangeStream({ events: new OpenFeatureEventEmitter() });
  try {
    expect(() => stream.issueTicket(undefined as never)).toThrow('changeStream.issueTicket(caller): give the verified subject');
    expect(() => stream.issueTicket('')).toThrow(TypeError);
    expect(stream.verifyTicket(stream.issueTicket('bo'))).toMatch(/^[\w-]{16}$/);
  } finally {
    stream.close();
  }
});
