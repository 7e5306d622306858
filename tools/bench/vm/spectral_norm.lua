-- spectral-norm (Benchmarks Game): power method on the infinite matrix A(i, j) =
-- 1 / ((i + j)(i + j + 1) / 2 + i + 1), 10 iterations of v = AtA u, u = AtA v.
-- Usage: lua5.4 spectral_norm.lua N
local function fixed9(x)
  local sign = ""
  if x < 0 then sign = "-"; x = -x end
  local v = math.floor(x * 1e9 + 0.5)
  local frac = tostring(v % 1000000000)
  while #frac < 9 do frac = "0" .. frac end
  return sign .. tostring(v // 1000000000) .. "." .. frac
end

local function a(i, j)
  local ij = i + j
  return 1.0 / (ij * (ij + 1) // 2 + i + 1)
end

-- Vectors are 0-based here (index 0..n-1) so that a(i, j) is the same expression in all ports.
local function mul_av(n, v, out)
  for i = 0, n - 1 do
    local s = 0.0
    for j = 0, n - 1 do s = s + a(i, j) * v[j] end
    out[i] = s
  end
end

local function mul_atv(n, v, out)
  for i = 0, n - 1 do
    local s = 0.0
    for j = 0, n - 1 do s = s + a(j, i) * v[j] end
    out[i] = s
  end
end

local function mul_atav(n, v, out, tmp)
  mul_av(n, v, tmp)
  mul_atv(n, tmp, out)
end

local n = tonumber(arg[1])
local u, v, tmp = {}, {}, {}
for i = 0, n - 1 do u[i] = 1.0; v[i] = 0.0; tmp[i] = 0.0 end
for _ = 1, 10 do
  mul_atav(n, u, v, tmp)
  mul_atav(n, v, u, tmp)
end
local vbv, vv = 0.0, 0.0
for i = 0, n - 1 do
  vbv = vbv + u[i] * v[i]
  vv = vv + v[i] * v[i]
end
print(fixed9(math.sqrt(vbv / vv)))
