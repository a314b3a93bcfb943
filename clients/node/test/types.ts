// Compiled by `tsc --noEmit -p test/tsconfig.json` in ci.sh: checks that
// index.d.ts describes the API as the examples use it.
import { setGlobalDispatcher } from 'undici';
import * as zerohop from '..';

async function example(): Promise<void> {
  const client: zerohop.Client = zerohop.open('/var/run/zerohop', { backend: 'auto', countersDir: 'off' });
  const backend: zerohop.Backend = client.backend;
  const e = client.get('GET', 'http', 'catalog.internal', '/items/42');
  if (e !== null) {
    const status: number = e.status;
    const body: Buffer = e.body;
    const headers: ReadonlyArray<readonly [string, string]> = e.headers;
    console.log(status, body.length, headers, e.ageSeconds(Date.now()));
  }
  const r = client.serve('GET', 'http', 'catalog.internal', '/items/42', { accept: 'application/json' });
  if (r) console.log(r.status, r.ttlSeconds);
  setGlobalDispatcher(client.dispatcher());
  const seq: number = await client.invalidate('http://catalog.internal/items/42');
  await client.invalidate(zerohop.tagRecord('product-42', 'soft'), { timeoutMs: 2000 });
  const s: zerohop.ClientStats = client.stats();
  const published: number = s.servedBytes + s.bypassMethod + s.bypassNoCache;
  client.publishCounters();
  const cf: string | null = client.countersFile();
  const ce: Error | null = client.countersError;
  void published; void cf; void ce;
  console.log(backend, seq, s.cache.faults, zerohop.addonStatus().available, zerohop.flags.AUTH_SHARED);
  try {
    zerohop.open('/nonexistent');
  } catch (err) {
    if (err instanceof zerohop.ZerohopError) console.log(err.code);
  }
  client.close();
}

void example;
