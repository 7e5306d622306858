-- fannkuch-redux (Benchmarks Game): for every permutation of 0..n-1 (in the order of the
-- reference's counting scheme), count the prefix reversals until 0 is first; print the
-- alternating-sign checksum and the maximum. Usage: lua5.4 fannkuch_redux.lua N
local n = tonumber(arg[1])
local perm1, perm, count = {}, {}, {}
for i = 0, n - 1 do perm1[i] = i; perm[i] = 0; count[i] = 0 end
local max_flips, checksum, perm_count, r = 0, 0, 0, n
while true do
  while r ~= 1 do count[r - 1] = r; r = r - 1 end
  for i = 0, n - 1 do perm[i] = perm1[i] end
  local flips = 0
  local k = perm[0]
  while k ~= 0 do
    local i, j = 0, k
    while i < j do
      perm[i], perm[j] = perm[j], perm[i]
      i = i + 1; j = j - 1
    end
    flips = flips + 1
    k = perm[0]
  end
  if flips > max_flips then max_flips = flips end
  if perm_count % 2 == 0 then checksum = checksum + flips else checksum = checksum - flips end
  -- Next permutation: rotate the first r + 1 elements until a counter does not wrap.
  while true do
    if r == n then
      print(checksum)
      print(string.format("Pfannkuchen(%d) = %d", n, max_flips))
      return
    end
    local perm0 = perm1[0]
    for i = 0, r - 1 do perm1[i] = perm1[i + 1] end
    perm1[r] = perm0
    count[r] = count[r] - 1
    if count[r] > 0 then break end
    r = r + 1
  end
  perm_count = perm_count + 1
end
