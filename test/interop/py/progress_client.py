"""Python Celery client reading a task's PROGRESS states: sends tasks.progress(gate, steps), and each time it
sees a new step it opens that step's gate, so every state is seen; prints one JSON line with what it saw."""
import json
import sys
import time

from tasks import app

call = json.load(sys.stdin)
gate, steps = call['gate'], call['steps']
result = app.send_task('tasks.progress', args=[gate, steps])
seen = []
deadline = time.monotonic() + 30
while not result.ready() and time.monotonic() < deadline:
    state, info = result.state, result.info
    if state == 'PROGRESS' and info['step'] not in [s['step'] for s in seen]:
        seen.append(info)
        open('%s.%d' % (gate, info['step']), 'w').close()
    time.sleep(0.02)
print(json.dumps({'id': result.id, 'seen': seen, 'value': result.get(timeout=20), 'state': result.state}), flush=True)
