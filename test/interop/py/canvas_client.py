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
print(json.dumps(out))
