import NIfTI

extension SyntheticCTEvaluation {
    /// Mean SSIM inside the mask, as SynthRAD 2023 computes it (`ImageMetrics.ssim` of github.com/SynthRAD2023/metrics):
    /// both images clipped to [−1024, 3000] HU, voxels outside the mask set to −1024, shifted by +1024 to be
    /// non-negative; the SSIM map of Wang et al. 2004 (eq. 13: K1 = 0.01, K2 = 0.03, data range L = 4024, local
    /// statistics over `window`); then the mean of the map over the mask voxels at least one window radius from
    /// every face of the volume (scikit-image's `crop(ssim_map, pad)`).
    ///
    /// The 3-D filtering is separable and computed only on the interior it is averaged over, plane by plane with
    /// a ring of the last 2r + 1 filtered planes, in double precision: O(5·3·(2r + 1)) operations per voxel and
    /// memory for 2r + 1 planes.
    public static func structuralSimilarity(prediction: [Float], reference: [Float], grid: GridSize, mask: [Bool],
                                            window: SSIMWindow = .synthRAD) throws -> Double {
        try checkSizes(prediction, reference, grid, mask)
        if case .uniform(let size) = window, size < 3 || size % 2 == 0 {
            throw EvaluationError("the SSIM window size must be odd and at least 3, not \(size)")
        }
        if case .gaussian(let sigma) = window, !(sigma > 0 && sigma < 100) {
            throw EvaluationError("the SSIM Gaussian sigma must be positive, not \(sigma)")
        }
        let (weights, covarianceNorm) = window.weights(dimensions: 3)
        let taps = weights.count, radius = taps / 2
        let nx = grid.nx, ny = grid.ny, nz = grid.nz
        guard nx >= taps, ny >= taps, nz >= taps else {
            throw EvaluationError("grid \(grid) is smaller than the \(taps)-voxel SSIM window")
        }
        // SynthRAD's preprocessing: clip, background outside the mask, shift to be non-negative.
        var x = [Float](repeating: 0, count: grid.count), y = x
        for v in 0..<grid.count where mask[v] {
            x[v] = clip(reference[v]) - lowerHU
            y[v] = clip(prediction[v]) - lowerHU
        }
        let c1 = (0.01 * dataRange) * (0.01 * dataRange)
        let c2 = (0.03 * dataRange) * (0.03 * dataRange)
        let ox = nx - 2 * radius, oy = ny - 2 * radius
        let planeSize = ox * oy
        // Five filtered quantities: x, y, x², y², xy.
        var rowPass = [Double](repeating: 0, count: 5 * ox * ny)
        var ring = [Double](repeating: 0, count: taps * 5 * planeSize)
        var combined = [Double](repeating: 0, count: 5 * planeSize)
        var sum = 0.0, count = 0

        x.withUnsafeBufferPointer { xp in
        y.withUnsafeBufferPointer { yp in
        mask.withUnsafeBufferPointer { mp in
        weights.withUnsafeBufferPointer { w in
        rowPass.withUnsafeMutableBufferPointer { rp in
        ring.withUnsafeMutableBufferPointer { ringp in
        combined.withUnsafeMutableBufferPointer { cp in
            for k in 0..<nz {
                // Filter plane k along i (valid part only), for all rows j.
                let plane = k * nx * ny
                for j in 0..<ny {
                    let row = plane + j * nx
                    for a in 0..<ox {
                        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0
                        for t in 0..<taps {
                            let xv = Double(xp[row + a + t]), yv = Double(yp[row + a + t]), wt = w[t]
                            s0 += wt * xv; s1 += wt * yv
                            s2 += wt * xv * xv; s3 += wt * yv * yv; s4 += wt * xv * yv
                        }
                        let o = j * ox + a
                        rp[o] = s0; rp[ox * ny + o] = s1; rp[2 * ox * ny + o] = s2
                        rp[3 * ox * ny + o] = s3; rp[4 * ox * ny + o] = s4
                    }
                }
                // Then along j, into ring slot k mod taps.
                let slot = (k % taps) * 5 * planeSize
                for q in 0..<5 {
                    let src = q * ox * ny, dst = slot + q * planeSize
                    for b in 0..<oy {
                        for a in 0..<ox {
                            var s = 0.0
                            for t in 0..<taps { s += w[t] * rp[src + (b + t) * ox + a] }
                            ringp[dst + b * ox + a] = s
                        }
                    }
                }
                guard k >= taps - 1 else { continue }
                // Along k: planes k − 2r … k give the statistics of plane z = k − r.
                let z = k - radius
                var anyMasked = false
                for b in 0..<oy where !anyMasked {
                    let row = (z * ny + b + radius) * nx + radius
                    for a in 0..<ox where mp[row + a] { anyMasked = true; break }
                }
                guard anyMasked else { continue }
                for i in 0..<(5 * planeSize) { cp[i] = 0 }
                for t in 0..<taps {
                    let src = ((k - 2 * radius + t) % taps) * 5 * planeSize, wt = w[t]
                    for i in 0..<(5 * planeSize) { cp[i] += wt * ringp[src + i] }
                }
                for b in 0..<oy {
                    let row = (z * ny + b + radius) * nx + radius
                    for a in 0..<ox where mp[row + a] {
                        let o = b * ox + a
                        let ux = cp[o], uy = cp[planeSize + o]
                        let vx = covarianceNorm * (cp[2 * planeSize + o] - ux * ux)
                        let vy = covarianceNorm * (cp[3 * planeSize + o] - uy * uy)
                        let vxy = covarianceNorm * (cp[4 * planeSize + o] - ux * uy)
                        let s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
                        sum += s
                        count += 1
                    }
                }
            }
        }}}}}}}
        guard count > 0 else {
            throw EvaluationError("no mask voxel lies at least \(radius) voxels inside the volume (SSIM window)")
        }
        return sum / Double(count)
    }
}
