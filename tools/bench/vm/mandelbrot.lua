-- mandelbrot (Benchmarks Game): an N x N bitmap of the Mandelbrot set over [-1.5, 0.5] x
-- [-1, 1], 50 iterations, escape at |z|^2 > 4, one bit per pixel packed MSB first into bytes
-- (rows padded). Prints the PBM header and, instead of the bytes, their count and a checksum.
-- Usage: lua5.4 mandelbrot.lua N
local n = tonumber(arg[1])
local bytes, hash = 0, 0
for y = 0, n - 1 do
  local ci = 2.0 * y / n - 1.0
  local bits, nbits = 0, 0
  for x = 0, n - 1 do
    local cr = 2.0 * x / n - 1.5
    local zr, zi, tr, ti = 0.0, 0.0, 0.0, 0.0
    local i = 0
    while i < 50 and tr + ti <= 4.0 do
      zi = 2.0 * zr * zi + ci
      zr = tr - ti + cr
      tr = zr * zr
      ti = zi * zi
      i = i + 1
    end
    bits = bits << 1
    if tr + ti <= 4.0 then bits = bits | 1 end
    nbits = nbits + 1
    if nbits == 8 or x == n - 1 then
      bits = bits << (8 - nbits)
      bytes = bytes + 1
      hash = (hash * 31 + bits) % 1000000007
      bits, nbits = 0, 0
    end
  end
end
print(string.format("P4\n%d %d", n, n))
print(string.format("%d bytes, checksum %d", bytes, hash))
