# mandelbrot (Benchmarks Game): an N x N bitmap of the Mandelbrot set over [-1.5, 0.5] x
# [-1, 1], 50 iterations, escape at |z|^2 > 4, one bit per pixel packed MSB first into bytes
# (rows padded). Prints the PBM header and, instead of the bytes, their count and a checksum.
# Usage: python3 mandelbrot.py N
import sys


def main():
    n = int(sys.argv[1])
    nbytes = 0
    h = 0
    for y in range(n):
        ci = 2.0 * y / n - 1.0
        bits = 0
        nbits = 0
        for x in range(n):
            cr = 2.0 * x / n - 1.5
            zr = zi = tr = ti = 0.0
            i = 0
            while i < 50 and tr + ti <= 4.0:
                zi = 2.0 * zr * zi + ci
                zr = tr - ti + cr
                tr = zr * zr
                ti = zi * zi
                i += 1
            bits = bits << 1
            if tr + ti <= 4.0:
                bits = bits | 1
            nbits += 1
            if nbits == 8 or x == n - 1:
                bits = bits << (8 - nbits)
                nbytes += 1
                h = (h * 31 + bits) % 1000000007
                bits = 0
                nbits = 0
    print(f"P4\n{n} {n}")
    print(f"{nbytes} bytes, checksum {h}")


main()
