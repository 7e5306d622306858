# richards: Martin Richards' OS-kernel simulation (the classic scheduler benchmark): an idle
# task, a worker, two handlers and two devices exchange packets through a priority scheduler.
# Each task is a control block whose `kind` selects its behaviour (the same dispatch in all
# three ports). Prints the queue and hold counts. Usage: python3 richards.py N (idle count)
import sys

ID_IDLE, ID_WORKER, ID_HANDLER_A, ID_HANDLER_B, ID_DEVICE_A, ID_DEVICE_B = 0, 1, 2, 3, 4, 5
KIND_DEVICE, KIND_WORK = 0, 1
DATA_SIZE = 4
RUNNING, RUNNABLE, SUSPENDED, HELD = 0, 1, 2, 4
SUSPENDED_RUNNABLE = 3
NOT_HELD_MASK = 3  # clears HELD: the states use bits 0..2 only
T_IDLE, T_WORKER, T_HANDLER, T_DEVICE = 0, 1, 2, 3


class Packet:
    __slots__ = ("link", "id", "kind", "a1", "a2")

    def __init__(self, link, id, kind):
        self.link = link
        self.id = id
        self.kind = kind
        self.a1 = 0
        self.a2 = [0, 0, 0, 0]


class Tcb:
    __slots__ = ("link", "id", "priority", "queue", "state", "kind", "v1", "v2")

    def __init__(self, link, id, priority, queue, state, kind, v1, v2):
        self.link = link
        self.id = id
        self.priority = priority
        self.queue = queue
        self.state = state
        self.kind = kind
        self.v1 = v1
        self.v2 = v2


class Scheduler:
    __slots__ = ("queue_count", "hold_count", "blocks", "list", "current", "current_id")

    def __init__(self):
        self.queue_count = 0
        self.hold_count = 0
        self.blocks = [None] * 6
        self.list = None
        self.current = None
        self.current_id = 0


sched = Scheduler()


def add_to(p, q):
    """Appends p to the end of queue q; returns the queue."""
    p.link = None
    if q is None:
        return p
    nxt = q
    while nxt.link is not None:
        nxt = nxt.link
    nxt.link = p
    return q


def add_task(id, priority, queue, kind, v1, v2):
    state = SUSPENDED_RUNNABLE
    if queue is None:
        state = SUSPENDED
    tcb = Tcb(sched.list, id, priority, queue, state, kind, v1, v2)
    sched.list = tcb
    sched.current = tcb
    sched.blocks[id] = tcb


def release(id):
    t = sched.blocks[id]
    if t is None:
        return t
    t.state = t.state & NOT_HELD_MASK
    if t.priority > sched.current.priority:
        return t
    return sched.current


def hold_current():
    sched.hold_count = sched.hold_count + 1
    c = sched.current
    c.state = c.state | HELD
    return c.link


def suspend_current():
    c = sched.current
    c.state = c.state | SUSPENDED
    return c


def queue_packet(p):
    t = sched.blocks[p.id]
    if t is None:
        return t
    sched.queue_count = sched.queue_count + 1
    p.link = None
    p.id = sched.current_id
    c = sched.current
    if t.queue is None:
        t.queue = p
        t.state = t.state | RUNNABLE
        if t.priority > c.priority:
            return t
    else:
        t.queue = add_to(p, t.queue)
    return c


def run_idle(t):
    t.v2 = t.v2 - 1
    if t.v2 == 0:
        return hold_current()
    if t.v1 & 1 == 0:
        t.v1 = t.v1 >> 1
        return release(ID_DEVICE_A)
    t.v1 = (t.v1 >> 1) ^ 0xD008
    return release(ID_DEVICE_B)


def run_device(t, p):
    if p is None:
        if t.v1 is None:
            return suspend_current()
        v = t.v1
        t.v1 = None
        return queue_packet(v)
    t.v1 = p
    return hold_current()


def run_worker(t, p):
    if p is None:
        return suspend_current()
    if t.v1 == ID_HANDLER_A:
        t.v1 = ID_HANDLER_B
    else:
        t.v1 = ID_HANDLER_A
    p.id = t.v1
    p.a1 = 0
    for i in range(DATA_SIZE):
        t.v2 = t.v2 + 1
        if t.v2 > 26:
            t.v2 = 1
        p.a2[i] = t.v2
    return queue_packet(p)


def run_handler(t, p):
    if p is not None:
        if p.kind == KIND_WORK:
            t.v1 = add_to(p, t.v1)
        else:
            t.v2 = add_to(p, t.v2)
    if t.v1 is not None:
        w = t.v1
        count = w.a1
        if count < DATA_SIZE:
            if t.v2 is not None:
                v = t.v2
                t.v2 = v.link
                v.a1 = w.a2[count]
                w.a1 = count + 1
                return queue_packet(v)
        else:
            t.v1 = w.link
            return queue_packet(w)
    return suspend_current()


def run_tcb(t):
    p = None
    if t.state == SUSPENDED_RUNNABLE:
        p = t.queue
        t.queue = p.link
        if t.queue is None:
            t.state = RUNNING
        else:
            t.state = RUNNABLE
    k = t.kind
    if k == T_IDLE:
        return run_idle(t)
    if k == T_WORKER:
        return run_worker(t, p)
    if k == T_HANDLER:
        return run_handler(t, p)
    return run_device(t, p)


def schedule():
    sched.current = sched.list
    while sched.current is not None:
        c = sched.current
        if c.state & HELD != 0 or c.state == SUSPENDED:
            sched.current = c.link
        else:
            sched.current_id = c.id
            sched.current = run_tcb(c)


def main():
    count = int(sys.argv[1])
    add_task(ID_IDLE, 0, None, T_IDLE, 1, count)
    sched.current.state = RUNNING
    q = Packet(None, ID_WORKER, KIND_WORK)
    q = Packet(q, ID_WORKER, KIND_WORK)
    add_task(ID_WORKER, 1000, q, T_WORKER, ID_HANDLER_A, 0)
    q = Packet(None, ID_DEVICE_A, KIND_DEVICE)
    q = Packet(q, ID_DEVICE_A, KIND_DEVICE)
    q = Packet(q, ID_DEVICE_A, KIND_DEVICE)
    add_task(ID_HANDLER_A, 2000, q, T_HANDLER, None, None)
    q = Packet(None, ID_DEVICE_B, KIND_DEVICE)
    q = Packet(q, ID_DEVICE_B, KIND_DEVICE)
    q = Packet(q, ID_DEVICE_B, KIND_DEVICE)
    add_task(ID_HANDLER_B, 3000, q, T_HANDLER, None, None)
    add_task(ID_DEVICE_A, 4000, None, T_DEVICE, None, None)
    add_task(ID_DEVICE_B, 5000, None, T_DEVICE, None, None)
    schedule()
    print(f"queue count {sched.queue_count}, hold count {sched.hold_count}")


main()
