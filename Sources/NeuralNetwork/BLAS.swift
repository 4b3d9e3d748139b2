import COpenBLAS

/// Row-major single-precision GEMM on OpenBLAS: C = alpha·op(A)·op(B) + beta·C.
package enum BLAS {
    static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

    /// The kernel set OpenBLAS runs ("Haswell", "SkylakeX", "Cooperlake", ...: `openblas_get_corename`). Debian's
    /// OpenBLAS chooses it from the CPU at load time unless `OPENBLAS_CORETYPE` names one.
    package static var kernels: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    @inline(__always)
    package static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        // Outside a fork OpenBLAS may run threads of its own: the compute pool's workers stop spinning for them.
        if !ComputeThreads.serial && ComputeThreads.count > 1 { ComputePool.shared.park() }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension BLAS {
    /// C = A·B (+ beta·C) with B not transposed, split by columns of B and C into one single-threaded GEMM per
    /// thread, run at once. For the forward convolutions, whose GEMMs are too small for OpenBLAS's own threading
    /// to pay (its threads synchronise per call); inside `ComputeThreads.pair` it is one plain GEMM.
    package static func sgemmSplitColumns(transA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                  b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let threads = ComputeThreads.serial ? 1 : min(ComputeThreads.count, n / 64)
        if threads <= 1 {
            sgemm(transA: transA, transB: false, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        ComputeThreads.fork(threads) { t in
            // Column bands aligned to 16 floats.
            let lo = (n * t / threads) & ~15, hi = t == threads - 1 ? n : (n * (t + 1) / threads) & ~15
            if lo < hi {
                sgemm(transA: transA, transB: false, m: m, n: hi - lo, k: k, a: a, lda: lda, b: b + lo, ldb: ldb,
                      beta: beta, c: c + lo, ldc: ldc)
            }
        }
    }
}

/// Vectorised reductions and element-wise helpers on raw buffers.
package enum Kernels {
    /// Σ x[i], accumulated in 16 float lanes per 1024-element block and in double across blocks.
    @inline(__always)
    package static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var total = 0.0
        var i = 0
        while i < n {
            let end = min(n, i + 1024)
            var acc = SIMD16<Float>()
            while i + 16 <= end {
                acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
                i += 16
            }
            var s = Double(acc.sum())
            while i < end { s += Double(x[i]); i += 1 }
            total += s
        }
        return total
    }

    /// Σ (x[i] − mean)².
    @inline(__always)
    package static func sumSquaredDeviations(_ x: UnsafePointer<Float>, _ n: Int, mean: Float) -> Double {
        var total = 0.0
        var i = 0
        let m = SIMD16<Float>(repeating: mean)
        while i < n {
            let end = min(n, i + 1024)
            var acc = SIMD16<Float>()
            while i + 16 <= end {
                let d = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - m
                acc += d * d
                i += 16
            }
            var s = Double(acc.sum())
            while i < end { let d = x[i] - mean; s += Double(d * d); i += 1 }
            total += s
        }
        return total
    }

    /// Σ x[i]·y[i].
    @inline(__always)
    package static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Double {
        var total = 0.0
        var i = 0
        while i < n {
            let end = min(n, i + 1024)
            var acc = SIMD16<Float>()
            while i + 16 <= end {
                acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
                    * UnsafeRawPointer(y + i).loadUnaligned(as: SIMD16<Float>.self)
                i += 16
            }
            var s = Double(acc.sum())
            while i < end { s += Double(x[i] * y[i]); i += 1 }
            total += s
        }
        return total
    }

    /// y[i] += a·x[i].
    @inline(__always)
    package static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] += a * x[i] }
    }

    /// A 64-bit hash of the bit patterns of x[0..<n] (eight independent multiplicative lanes, then mixed):
    /// tells whether a buffer changed since it was last seen, at memory speed.
    package static func fingerprint(_ x: UnsafePointer<Float>, _ n: Int) -> UInt64 {
        let prime: UInt64 = 0x100000001b3
        var lanes = SIMD8<UInt64>(repeating: 0xcbf29ce484222325) &+ SIMD8(0, 1, 2, 3, 4, 5, 6, 7)
        let words = UnsafeRawPointer(x)
        var i = 0
        while i + 8 <= n {
            let bits = SIMD8<UInt64>(truncatingIfNeeded: words.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<UInt32>.self))
            lanes = (lanes ^ bits) &* prime
            i += 8
        }
        var h: UInt64 = UInt64(n)
        while i < n { h = (h ^ UInt64(x[i].bitPattern)) &* prime; i += 1 }
        for l in 0..<8 { h = (h ^ lanes[l]) &* prime; h ^= h >> 29 }
        return h
    }
}
