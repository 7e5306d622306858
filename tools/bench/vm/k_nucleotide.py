# k-nucleotide (Benchmarks Game): count every k-mer of a DNA sequence in a hash table; print
# the 1- and 2-mer frequencies (descending count, then key) and the counts of five given
# k-mers. The input is generated here, as fasta's "Homo sapiens frequency" section: the
# reference LCG (seed 42) picks each of N letters from the cumulative probabilities.
# Usage: python3 k_nucleotide.py N
import sys

IM, IA, IC = 139968, 3877, 29573
last = 42


def make_sequence(n):
    global last
    letters = ["A", "C", "G", "T"]
    probs = [0.3029549426680, 0.1979883004921, 0.1975473066391, 0.3015094502008]
    cum = []
    acc = 0.0
    for p in probs:
        acc = acc + p
        cum.append(acc)
    out = []
    for _ in range(n):
        last = (last * IA + IC) % IM
        r = last / IM
        k = 0
        while k < 3 and r >= cum[k]:
            k += 1
        out.append(letters[k])
    return "".join(out)


def count(seq, k):
    counts = {}
    for i in range(len(seq) - k + 1):
        key = seq[i:i + k]
        if key in counts:
            counts[key] += 1
        else:
            counts[key] = 1
    return counts


def percent3(c, total):
    """Percent with three decimals, rounded half up, by integer arithmetic."""
    v = (c * 200000 + total) // (2 * total)
    frac = str(v % 1000)
    while len(frac) < 3:
        frac = "0" + frac
    return str(v // 1000) + "." + frac


def frequencies(seq, k):
    counts = count(seq, k)
    keys = sorted(counts, key=lambda key: (-counts[key], key))
    total = len(seq) - k + 1
    for key in keys:
        print(key + " " + percent3(counts[key], total))
    print("")


def main():
    seq = make_sequence(int(sys.argv[1]))
    frequencies(seq, 1)
    frequencies(seq, 2)
    for s in ["GGT", "GGTA", "GGTATT", "GGTATTTTAATT", "GGTATTTTAATTTATAGT"]:
        print(str(count(seq, len(s)).get(s, 0)) + "\t" + s)


main()
