// SPDX-License-Identifier: MIT
// allocs: a malloc-heavy C++ program for bench/heap.py.  Every round
// replaces a string in a hash map (a free and a malloc), grows or resets a
// vector in a tree, and makes and drops a short-lived buffer: ~3 allocations
// and ~3 frees per round through operator new/delete, sizes 16 B..1 KiB.
// Usage: allocs [ROUNDS=2000000]
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000, sum = 0;
	std::unordered_map<long, std::string> names;
	std::map<long, std::vector<long>> lists;
	unsigned long x = 88172645463325252UL;

	for (long i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		long k = (long)(x % 100000);
		names[k] = std::string(16 + x % 200, 'a');
		auto &v = lists[k % 50000];
		v.push_back(i);
		if (v.size() > 8) {
			v.clear();
			v.shrink_to_fit();
		}
		auto buf = std::make_unique<char[]>(32 + x % 1000);
		buf[0] = (char)i;
		sum += buf[0];
	}
	printf("%zu %zu %ld\n", names.size(), lists.size(), sum);
	return 0;
}
