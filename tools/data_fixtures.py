#!/usr/bin/python3
"""Writes the .npy and CSV files that check_data reads, with numpy's own
writers (numpy.save, numpy.savetxt), so the runtime's readers are checked
against files they did not make. Every value is a formula of its row i and
column j, which the test recomputes:

  x_f32.npy    float32 [5, 3]     x = i * 0.5 - j / 3
  x_f64.npy    float64 [4, 2, 3]  x = (i * 6 + j) * 0.25 - 1   (j over the 6 flattened)
  x_u8.npy     uint8   [3, 4]     x = i * 40 + j
  x_fortran.npy float32 [3, 2], Fortran order (rejected)
  x_big.npy    >f4 [2, 2]         (big-endian: rejected)
  y_i64.npy    int64   [5]        y = (i * 2) % 3
  y_u8.npy     uint8   [4]        y = i
  t_f32.npy    float32 [5, 2]     t = i + j / 4
  t_f64.npy    float64 [4]        t = -i / 8
  table.csv    numpy.savetxt, ';'-delimited, a '# ' header: 4 rows of
               a = i / 7, b = 1e-3 * (i + 1), target = i % 2

Usage (from the repository root): /usr/bin/python3 tools/data_fixtures.py
"""
import numpy as np

OUT = "tests/fixtures/data/"


def grid(shape, f, dtype):
    a = np.zeros(shape, dtype=np.float64)
    for idx in np.ndindex(*shape):
        a[idx] = f(*idx)
    return a.astype(dtype)


def main():
    np.save(OUT + "x_f32.npy", grid((5, 3), lambda i, j: i * 0.5 - j / 3, np.float32))
    x64 = grid((4, 6), lambda i, j: (i * 6 + j) * 0.25 - 1, np.float64).reshape(4, 2, 3)
    np.save(OUT + "x_f64.npy", x64)
    np.save(OUT + "x_u8.npy", grid((3, 4), lambda i, j: i * 40 + j, np.uint8))
    np.save(OUT + "x_fortran.npy", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(3, 2)))
    np.save(OUT + "x_big.npy", np.arange(4, dtype=">f4").reshape(2, 2))
    np.save(OUT + "y_i64.npy", np.array([(i * 2) % 3 for i in range(5)], dtype=np.int64))
    np.save(OUT + "y_u8.npy", np.arange(4, dtype=np.uint8))
    np.save(OUT + "t_f32.npy", grid((5, 2), lambda i, j: i + j / 4, np.float32))
    np.save(OUT + "t_f64.npy", np.array([-i / 8 for i in range(4)], dtype=np.float64))
    rows = np.array([[i / 7, 1e-3 * (i + 1), i % 2] for i in range(4)])
    np.savetxt(OUT + "table.csv", rows, delimiter=";", header="a;b;target", fmt="%.17g")


if __name__ == "__main__":
    main()
