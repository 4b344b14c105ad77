"""Python Celery 5.2 peer for the interop tests: the lecture's tasks under the same names celeriac uses."""
import os

from celery import Celery

app = Celery('tasks', broker=os.environ['CELERY_BROKER_URL'], backend=os.environ.get('CELERY_RESULT_BACKEND'))
app.conf.update(
    task_serializer='json',
    result_serializer='json',
    accept_content=['json'],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_acks_late=os.environ.get('CELERY_ACKS_LATE') == '1',
    broker_transport_options={'visibility_timeout': float(os.environ.get('CELERY_VISIBILITY_TIMEOUT', '3600'))},
)


@app.task(name='tasks.add')
def add(x, y):
    return x + y


@app.task(name='tasks.mul')
def mul(x, y):
    return x * y


@app.task(name='tasks.xsum')
def xsum(numbers):
    return sum(numbers)


@app.task(name='tasks.broken_task')
def broken_task():
    raise Exception('failed')


@app.task(name='tasks.print_task')
def print_task(x):
    print(x)


@app.task(name='tasks.on_task_success')
def on_task_success(result, task_name):
    return f'{task_name} succeeded with {result!r}'


@app.task(name='tasks.on_task_error')
def on_task_error(*args):
    # Celery 5.2 calls an errback that takes more than one argument in the worker itself, with
    # (request, exc, traceback) before its own args; the print lets tests see that it ran.
    print(f'errback got {list(args)!r}', flush=True)
    return f'errback got {list(args)!r}'


@app.task(name='tasks.sleepy')
def sleepy(ms, tag):
    import time
    time.sleep(ms / 1000)
    return tag


def _gate_open(path, timeout=30.0):
    """Wait until `path` exists (the test creates it once it has seen the state): polls with a deadline."""
    import time
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise Exception('gate %s never opened' % path)
        time.sleep(0.02)


@app.task(name='tasks.progress', bind=True)
def progress(self, gate, steps):
    for step in range(1, steps + 1):
        self.update_state(state='PROGRESS', meta={'step': step, 'of': steps})
        _gate_open('%s.%d' % (gate, step))
    return 'done %d' % steps
