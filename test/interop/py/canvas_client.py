"""Runs the Celery lecture's canvases from a Python client; prints one JSON line per result."""
import json

from celery import chain, chord, group

from tasks import add, broken_task, mul, on_task_error, on_task_success, print_task, xsum

out = {}
r = add.delay(1, 1)
out['add'] = {'value': r.get(timeout=20), 'state': r.state, 'ready': r.ready()}
out['group'] = group(add.s(i, i) for i in range(10))().get(timeout=20)
out['chain'] = chain(add.s(4, 4) | mul.s(8))().get(timeout=20)
out['chord'] = chord(group(add.s(i, i) for i in range(10)), xsum.s())().get(timeout=30)
broken = broken_task.apply_async(link_error=on_task_error.s('broken_task'))
try:
    broken.get(timeout=20)
except Exception as exc:  # noqa: BLE001 - the remote failure
    out['broken'] = {'type': type(exc).__name__, 'message': str(exc), 'id': broken.id}
printed = print_task.apply_async(('something',), link=on_task_success.s('print_task'))
out['print'] = {'value': printed.get(timeout=20), 'id': printed.id}
# Nested canvases, encoded by Celery itself, on whoever runs the workers.
out['nested_chain'] = (add.s(1, 1) | group(mul.s(i) for i in (1, 2, 3)) | xsum.s())().get(timeout=30)
out['chain_group_chord'] = chain(group(add.s(1, 1), add.s(2, 2)), chord([xsum.s(), xsum.s()], xsum.s()))().get(timeout=30)
out['chord_body_chain'] = chord([add.s(i, i) for i in range(3)], xsum.s() | add.s(90))().get(timeout=30)
out['chord_of_chains'] = chord([chain(add.s(1, 1), mul.s(3)), chain(add.s(2, 2), mul.s(3))], xsum.s())().get(timeout=30)
out['group_of_chains'] = group(chain(add.s(i, i), mul.s(2 * i)) for i in (1, 2))().get(timeout=30)
out['map'] = xsum.map([[1, 2], [3]]).delay().get(timeout=30)
out['starmap'] = add.starmap([(1, 2), (3, 4)]).delay().get(timeout=30)
out['chunks'] = add.chunks([(i, i) for i in range(5)], 2).delay().get(timeout=30)
print(json.dumps(out))
