-- k-nucleotide (Benchmarks Game): count every k-mer of a DNA sequence in a hash table; print
-- the 1- and 2-mer frequencies (descending count, then key) and the counts of five given
-- k-mers. The input is generated here, as fasta's "Homo sapiens frequency" section: the
-- reference LCG (seed 42) picks each of N letters from the cumulative probabilities.
-- Usage: lua5.4 k_nucleotide.lua N
local IM, IA, IC = 139968, 3877, 29573
local last = 42

local function make_sequence(n)
  local letters = {"A", "C", "G", "T"}
  local probs = {0.3029549426680, 0.1979883004921, 0.1975473066391, 0.3015094502008}
  local cum, acc = {}, 0.0
  for i = 1, 4 do acc = acc + probs[i]; cum[i] = acc end
  local out = {}
  for i = 1, n do
    last = (last * IA + IC) % IM
    local r = last / IM
    local k = 1
    while k < 4 and r >= cum[k] do k = k + 1 end
    out[i] = letters[k]
  end
  return table.concat(out)
end

local function count(seq, k)
  local counts = {}
  for i = 1, #seq - k + 1 do
    local key = string.sub(seq, i, i + k - 1)
    counts[key] = (counts[key] or 0) + 1
  end
  return counts
end

-- Percent with three decimals, rounded half up, by integer arithmetic.
local function percent3(c, total)
  local v = (c * 200000 + total) // (2 * total)
  local frac = tostring(v % 1000)
  while #frac < 3 do frac = "0" .. frac end
  return tostring(v // 1000) .. "." .. frac
end

local function frequencies(seq, k)
  local counts = count(seq, k)
  local keys = {}
  for key in pairs(counts) do keys[#keys + 1] = key end
  table.sort(keys, function(a, b)
    if counts[a] ~= counts[b] then return counts[a] > counts[b] end
    return a < b
  end)
  local total = #seq - k + 1
  for _, key in ipairs(keys) do print(key .. " " .. percent3(counts[key], total)) end
  print("")
end

local seq = make_sequence(tonumber(arg[1]))
frequencies(seq, 1)
frequencies(seq, 2)
for _, s in ipairs({"GGT", "GGTA", "GGTATT", "GGTATTTTAATT", "GGTATTTTAATTTATAGT"}) do
  print(tostring(count(seq, #s)[s] or 0) .. "\t" .. s)
end
