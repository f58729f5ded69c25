/** Tasks: écluse runs no asynchronous import, so an image's task list and the task list are empty, not 404. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { glanceFixture, type GlanceFixture } from '../../helpers/glance-fixture.js';

let fx: GlanceFixture;
beforeAll(async () => {
  process.env.ECLUSE_METADEFS_DIR = '';
  fx = await glanceFixture([{ name: 'alpha' }]);
});
afterAll(async () => {
  delete process.env.ECLUSE_METADEFS_DIR;
  await fx?.close();
});

it('GET /v2/tasks and /v2/images/{id}/tasks answer empty lists; an unknown image is 404', async () => {
  const all = await fetch(`${fx.url}/v2/tasks`, { headers: { Accept: 'application/json' } });
  expect(all.status).toBe(200);
  expect(await all.json()).toEqual({ tasks: [], first: '/v2/tasks', schema: '/v2/schemas/tasks' });
  const mine = await fetch(`${fx.url}/v2/images/${fx.images[0]!.id}/tasks`);
  expect(mine.status).toBe(200);
  expect(await mine.json()).toEqual({ tasks: [] });
  const none = await fetch(`${fx.url}/v2/images/00000000-0000-4000-8000-000000000000/tasks`);
  expect(none.status).toBe(404);
});
