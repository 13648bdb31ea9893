// Unit tests of the map's gapless feed (static/js/mapdata.js), run by
// node's test runner from TestMapFeedInNode (mapfeed_test.go).
import test from 'node:test';
import assert from 'node:assert/strict';
import { MapFeed, countOf, rampScale, throttle, daysEnding } from '../../static/js/mapdata.js';

/** A feed whose sends are recorded; the socket is up unless down is set. */
function feed() {
  const sent = [];
  const statuses = [];
  let changes = 0;
  const ctl = { down: false };
  const f = new MapFeed({
    send: (type, data) => (ctl.down ? null : (sent.push({ type, data }), String(sent.length))),
    onChange: () => { changes++; },
    onStatus: (s) => statuses.push(s),
  });
  return { f, sent, statuses, ctl, changes: () => changes };
}

const st = (code, v, today) => ({ code, v, total: today, today, last7: today, rate7: 0, level: 0, by_place: [today, 0, 0, 0] });

test('snapshot then consecutive deltas are applied; the feed is live', () => {
  const { f, sent, statuses } = feed();
  f.subscribe();
  assert.deepEqual(sent[0], { type: 'subscribe', data: { topic: 'map' } });
  assert.equal(f.live, false);
  f.snapshot({ seq: 4, states: [st('56178', 1, 0), st('', 1, 0)] });
  assert.equal(f.live, true);
  f.delta({ seq: 5, states: [st('56178', 2, 10)] });
  assert.equal(f.states.get('56178').today, 10);
  assert.equal(f.seq, 5);
  assert.deepEqual(statuses, ['syncing', 'live']);
});

test('a seq gap asks for a snapshot and withholds the figures until it comes', () => {
  const { f, sent } = feed();
  f.subscribe();
  f.snapshot({ seq: 1, states: [st('56178', 1, 0)] });
  f.delta({ seq: 3, states: [st('56178', 3, 7)] }); // 2 is missing
  assert.equal(f.live, false);
  assert.deepEqual(sent.at(-1), { type: 'resync', data: { topic: 'map' } });
  assert.equal(f.states.get('56178').today, 0, 'the delta after the gap is not applied');
  f.delta({ seq: 4, states: [st('56178', 4, 8)] }); // before the snapshot: ignored
  assert.equal(f.states.get('56178').today, 0);
  f.snapshot({ seq: 4, states: [st('56178', 4, 8)] });
  assert.equal(f.live, true);
  f.delta({ seq: 4, states: [st('56178', 4, 8)] }); // already in the snapshot
  f.delta({ seq: 5, states: [st('56178', 5, 9)] });
  assert.equal(f.states.get('56178').today, 9);
  assert.equal(f.resyncs, 1);
  clearTimeout(f.resyncTimer);
});

test('a lost connection is not live until the next snapshot; an older version never wins', () => {
  const { f, ctl } = feed();
  f.subscribe();
  f.snapshot({ seq: 9, states: [st('56178', 5, 3)] });
  ctl.down = true;
  f.connectionLost();
  assert.equal(f.status, 'reconnecting');
  f.delta({ seq: 10, states: [st('56178', 6, 4)] });
  assert.equal(f.states.get('56178').today, 3);
  ctl.down = false;
  f.subscribe();
  assert.equal(f.status, 'syncing');
  f.snapshot({ seq: 12, states: [st('56178', 7, 5)] });
  f.delta({ seq: 13, states: [st('56178', 6, 99)] }); // stale version
  assert.equal(f.states.get('56178').today, 5);
});

test('counts by period and place', () => {
  const s = { ...st('1', 1, 2), last7: 5, total: 9, by_place: [4, 3, 1, 1], today_by_place: [1, 1, 0, 0], last7_by_place: [2, 2, 1, 0] };
  assert.equal(countOf(s, 'today', 'all'), 2);
  assert.equal(countOf(s, 'last7', 'ehpad'), 2);
  assert.equal(countOf(s, 'total', 'domicile'), 4);
  assert.equal(countOf(undefined, 'total', 'all'), 0);
});

test('colour scale classes and labels', () => {
  const sc = rampScale(7, true, String);
  assert.deepEqual(sc.labels, ['1 – 2', '3 – 4', '5 – 6', '7 – 8', '9 – 10']);
  assert.equal(sc.colour(0), sc.colour(null));
  assert.notEqual(sc.colour(1), sc.colour(10));
  assert.deepEqual(daysEnding('2026-03-01', 3), ['2026-02-27', '2026-02-28', '2026-03-01']);
});

test('throttle: first call at once, then at most one per interval with the latest arguments', async () => {
  const got = [];
  const th = throttle((v) => got.push(v), 50);
  th(1);
  th(2);
  th(3);
  assert.deepEqual(got, [1]);
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(got, [1, 3]);
});
