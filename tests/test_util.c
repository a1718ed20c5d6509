/* test_util.c - placeholder */
typedef int test_util_placeholder;
