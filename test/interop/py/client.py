"""Python Celery client for the interop tests. Reads a JSON list of calls on stdin,
runs each against the broker/backend from the environment, prints one JSON line per call."""
import json
import sys

from tasks import app


def run(call):
    name, args = call['task'], call.get('args', [])
    options = {k: call[k] for k in ('countdown', 'task_id') if k in call}
    result = app.send_task(name, args=args, kwargs=call.get('kwargs', {}), **options)
    out = {'id': result.id}
    try:
        out['value'] = result.get(timeout=call.get('timeout', 20))
    except Exception as exc:  # the remote failure, rebuilt by Celery
        out['error'] = {'type': type(exc).__name__, 'message': str(exc)}
    out['state'] = result.state
    out['ready'] = result.ready()
    return out


for call in json.load(sys.stdin):
    print(json.dumps(run(call)), flush=True)
