-- binary-trees (Benchmarks Game): allocate and walk perfect binary trees; a node is a pair of
-- children, a leaf has none. Usage: lua5.4 binary_trees.lua N   (maximum depth N)
local function make(d)
  if d == 0 then return {false, false} end
  return {make(d - 1), make(d - 1)}
end

local function check(t)
  local l = t[1]
  if not l then return 1 end
  return 1 + check(l) + check(t[2])
end

local max_depth = math.max(6, tonumber(arg[1]))
local stretch = max_depth + 1
print(string.format("stretch tree of depth %d\t check: %d", stretch, check(make(stretch))))
local long_lived = make(max_depth)
for d = 4, max_depth, 2 do
  local iterations = 1 << (max_depth - d + 4)
  local sum = 0
  for _ = 1, iterations do sum = sum + check(make(d)) end
  print(string.format("%d\t trees of depth %d\t check: %d", iterations, d, sum))
end
print(string.format("long lived tree of depth %d\t check: %d", max_depth, check(long_lived)))
