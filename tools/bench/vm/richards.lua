-- richards: Martin Richards' OS-kernel simulation (the classic scheduler benchmark): an idle
-- task, a worker, two handlers and two devices exchange packets through a priority scheduler.
-- Each task is a control block whose `kind` selects its behaviour (the same dispatch in all
-- three ports). Prints the queue and hold counts. Usage: lua5.4 richards.lua N (idle count)
local ID_IDLE, ID_WORKER, ID_HANDLER_A, ID_HANDLER_B, ID_DEVICE_A, ID_DEVICE_B = 0, 1, 2, 3, 4, 5
local KIND_DEVICE, KIND_WORK = 0, 1
local DATA_SIZE = 4
local RUNNING, RUNNABLE, SUSPENDED, HELD = 0, 1, 2, 4
local SUSPENDED_RUNNABLE = 3
local NOT_HELD_MASK = 3  -- clears HELD: the states use bits 0..2 only
local T_IDLE, T_WORKER, T_HANDLER, T_DEVICE = 0, 1, 2, 3

local function packet(link, id, kind)
  return {link = link, id = id, kind = kind, a1 = 0, a2 = {0, 0, 0, 0}}
end

-- Appends p to the end of queue q; returns the queue.
local function add_to(p, q)
  p.link = false
  if not q then return p end
  local next = q
  while next.link do next = next.link end
  next.link = p
  return q
end

local sched = {queue_count = 0, hold_count = 0, blocks = {}, list = false, current = false,
               current_id = 0}

local function add_task(id, priority, queue, kind, v1, v2)
  local state = SUSPENDED_RUNNABLE
  if not queue then state = SUSPENDED end
  local tcb = {link = sched.list, id = id, priority = priority, queue = queue, state = state,
               kind = kind, v1 = v1, v2 = v2}
  sched.list = tcb
  sched.current = tcb
  sched.blocks[id] = tcb
end

local function release(id)
  local t = sched.blocks[id]
  if not t then return t end
  t.state = t.state & NOT_HELD_MASK
  if t.priority > sched.current.priority then return t end
  return sched.current
end

local function hold_current()
  sched.hold_count = sched.hold_count + 1
  local c = sched.current
  c.state = c.state | HELD
  return c.link
end

local function suspend_current()
  local c = sched.current
  c.state = c.state | SUSPENDED
  return c
end

local function queue_packet(p)
  local t = sched.blocks[p.id]
  if not t then return t end
  sched.queue_count = sched.queue_count + 1
  p.link = false
  p.id = sched.current_id
  local c = sched.current
  if not t.queue then
    t.queue = p
    t.state = t.state | RUNNABLE
    if t.priority > c.priority then return t end
  else
    t.queue = add_to(p, t.queue)
  end
  return c
end

local function run_idle(t)
  t.v2 = t.v2 - 1
  if t.v2 == 0 then return hold_current() end
  if t.v1 & 1 == 0 then
    t.v1 = t.v1 >> 1
    return release(ID_DEVICE_A)
  end
  t.v1 = (t.v1 >> 1) ~ 0xD008
  return release(ID_DEVICE_B)
end

local function run_device(t, p)
  if not p then
    if not t.v1 then return suspend_current() end
    local v = t.v1
    t.v1 = false
    return queue_packet(v)
  end
  t.v1 = p
  return hold_current()
end

local function run_worker(t, p)
  if not p then return suspend_current() end
  if t.v1 == ID_HANDLER_A then t.v1 = ID_HANDLER_B else t.v1 = ID_HANDLER_A end
  p.id = t.v1
  p.a1 = 0
  for i = 1, DATA_SIZE do
    t.v2 = t.v2 + 1
    if t.v2 > 26 then t.v2 = 1 end
    p.a2[i] = t.v2
  end
  return queue_packet(p)
end

local function run_handler(t, p)
  if p then
    if p.kind == KIND_WORK then t.v1 = add_to(p, t.v1) else t.v2 = add_to(p, t.v2) end
  end
  if t.v1 then
    local w = t.v1
    local count = w.a1
    if count < DATA_SIZE then
      if t.v2 then
        local v = t.v2
        t.v2 = v.link
        v.a1 = w.a2[count + 1]
        w.a1 = count + 1
        return queue_packet(v)
      end
    else
      t.v1 = w.link
      return queue_packet(w)
    end
  end
  return suspend_current()
end

local function run_tcb(t)
  local p = false
  if t.state == SUSPENDED_RUNNABLE then
    p = t.queue
    t.queue = p.link
    if not t.queue then t.state = RUNNING else t.state = RUNNABLE end
  end
  local k = t.kind
  if k == T_IDLE then return run_idle(t) end
  if k == T_WORKER then return run_worker(t, p) end
  if k == T_HANDLER then return run_handler(t, p) end
  return run_device(t, p)
end

local function schedule()
  sched.current = sched.list
  while sched.current do
    local c = sched.current
    if c.state & HELD ~= 0 or c.state == SUSPENDED then
      sched.current = c.link
    else
      sched.current_id = c.id
      sched.current = run_tcb(c)
    end
  end
end

local count = tonumber(arg[1])
add_task(ID_IDLE, 0, false, T_IDLE, 1, count)
sched.current.state = RUNNING
local q = packet(false, ID_WORKER, KIND_WORK)
q = packet(q, ID_WORKER, KIND_WORK)
add_task(ID_WORKER, 1000, q, T_WORKER, ID_HANDLER_A, 0)
q = packet(false, ID_DEVICE_A, KIND_DEVICE)
q = packet(q, ID_DEVICE_A, KIND_DEVICE)
q = packet(q, ID_DEVICE_A, KIND_DEVICE)
add_task(ID_HANDLER_A, 2000, q, T_HANDLER, false, false)
q = packet(false, ID_DEVICE_B, KIND_DEVICE)
q = packet(q, ID_DEVICE_B, KIND_DEVICE)
q = packet(q, ID_DEVICE_B, KIND_DEVICE)
add_task(ID_HANDLER_B, 3000, q, T_HANDLER, false, false)
add_task(ID_DEVICE_A, 4000, false, T_DEVICE, false, false)
add_task(ID_DEVICE_B, 5000, false, T_DEVICE, false, false)
schedule()
print(string.format("queue count %d, hold count %d", sched.queue_count, sched.hold_count))
