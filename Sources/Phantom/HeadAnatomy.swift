import Foundation
import MR2CTSupport

/// One subject's head: the shape parameters drawn from a seeded generator, and the tissue at any point.
///
/// Head coordinates are millimetres, x to the subject's right, y anterior, z superior (RAS), with the origin at
/// the centre of the cranial ellipsoid. Outside in: skin, subcutaneous fat, scalp/temporalis muscle, the skull
/// (outer table, diploë, inner table; thicker at the forehead, where the frontal sinus sits), CSF, cortical grey
/// matter with gyral folding, white matter, lateral and third ventricles, deep grey nuclei, a midline fissure,
/// a tentorium and cerebellum; below the skull base: orbits (vitreous in orbital fat), maxillary and sphenoid
/// sinuses, nasal cavity with septum, facial bone, muscle. A smooth random displacement field deforms it all.
public struct HeadAnatomy: Codable, Sendable, Hashable {
    /// Cranium semi-axes (mm) at the skin: left-right, anterior-posterior, inferior-superior.
    public var craniumAxes: SIMD3<Double>
    /// Low-order modulation of the head outline (coefficients of x, y, z, xy, yz, xz, x²−y² on the unit sphere).
    public var shapeCoefficients: [Double]
    public var skinThickness: Double
    public var fatThickness: Double
    public var temporalisThickness: Double
    public var outerTable: Double
    public var diploe: Double
    public var innerTable: Double
    /// Extra diploë at the forehead (mm), where the frontal sinus is.
    public var frontalThickening: Double
    public var csfThickness: Double
    public var greyMatterThickness: Double
    public var foldAmplitude: Double
    public var foldPhase: SIMD3<Double>
    public var ventricleScale: Double
    public var skullBaseOffset: Double
    public var skullBaseThickness: Double
    /// Sinus size factors: left and right maxillary, frontal (0 = absent), sphenoid.
    public var maxillaryScale: SIMD2<Double>
    public var frontalSinusScale: Double
    public var sphenoidScale: Double
    /// Displacement field: Σ amplitude_m · sin(wave_m · q + phase_m) (mm).
    public var deformationWaves: [SIMD3<Double>]
    public var deformationAmplitudes: [SIMD3<Double>]
    public var deformationPhases: [Double]

    /// Draws a subject. `deformation` is the largest displacement amplitude (mm) of each of the four waves.
    public init(random rng: inout SeededRandom, deformation: Double) {
        func uniform(_ range: ClosedRange<Double>) -> Double {
            range.lowerBound + (range.upperBound - range.lowerBound) * rng.nextUnitDouble()
        }
        craniumAxes = SIMD3(uniform(62...71), uniform(76...86), uniform(64...72))
        shapeCoefficients = (0..<7).map { _ in uniform(-0.035...0.035) }
        skinThickness = uniform(1.5...2.5)
        fatThickness = uniform(2.0...5.0)
        temporalisThickness = uniform(3.0...7.0)
        outerTable = uniform(1.6...2.4)
        diploe = uniform(1.5...4.5)
        innerTable = uniform(1.2...1.8)
        frontalThickening = uniform(3...8)
        csfThickness = uniform(1.2...3.5)
        greyMatterThickness = uniform(2.5...3.5)
        foldAmplitude = uniform(1.0...3.0)
        foldPhase = SIMD3(uniform(0...6.283), uniform(0...6.283), uniform(0...6.283))
        ventricleScale = uniform(0.6...1.7)
        skullBaseOffset = uniform(-4...4)
        skullBaseThickness = uniform(5...9)
        maxillaryScale = SIMD2(uniform(0.7...1.3), uniform(0.7...1.3))
        frontalSinusScale = rng.nextUnitDouble() < 0.15 ? 0 : uniform(0.6...1.3)
        sphenoidScale = uniform(0.6...1.3)
        var waves: [SIMD3<Double>] = [], amplitudes: [SIMD3<Double>] = [], phases: [Double] = []
        for _ in 0..<4 {
            // A random direction, wavelength 60–120 mm: smooth enough to stay one-to-one (|∇u| < 0.5).
            var d = SIMD3(rng.nextNormal(), rng.nextNormal(), rng.nextNormal())
            d /= max(1e-9, (d * d).sum().squareRoot())
            waves.append(d * (2 * Double.pi / uniform(60...120)))
            amplitudes.append(SIMD3(uniform(-1...1), uniform(-1...1), uniform(-1...1)) * deformation / 2)
            phases.append(uniform(0...6.283))
        }
        deformationWaves = waves
        deformationAmplitudes = amplitudes
        deformationPhases = phases
    }

    // MARK: - Geometry helpers

    /// The smooth displacement at `q` (mm).
    @inlinable func displacement(at q: SIMD3<Double>) -> SIMD3<Double> {
        var u = SIMD3<Double>.zero
        for m in 0..<deformationWaves.count {
            u += deformationAmplitudes[m] * sin((deformationWaves[m] * q).sum() + deformationPhases[m])
        }
        return u
    }

    /// Approximate signed distance (mm) to an axis-aligned ellipsoid (negative inside): k0·(k0 − 1)/k1
    /// (Quílez's first-order bound, exact on the axes, good near the surface).
    @inlinable static func ellipsoidDistance(_ p: SIMD3<Double>, _ axes: SIMD3<Double>) -> Double {
        let k0 = ((p / axes) * (p / axes)).sum().squareRoot()
        let k1 = ((p / (axes * axes)) * (p / (axes * axes))).sum().squareRoot()
        guard k1 > 1e-12 else { return -axes.min() }
        return k0 * (k0 - 1) / k1
    }

    /// (p/axes)², < 1 inside an axis-aligned ellipsoid.
    @inlinable static func ellipsoidRadius2(_ p: SIMD3<Double>, _ axes: SIMD3<Double>) -> Double {
        ((p / axes) * (p / axes)).sum()
    }

    @inlinable static func smoothstep(_ e0: Double, _ e1: Double, _ x: Double) -> Double {
        let t = min(1, max(0, (x - e0) / (e1 - e0)))
        return t * t * (3 - 2 * t)
    }

    /// Polynomial smooth minimum (blends two distance fields over `k` mm).
    @inlinable static func smoothMin(_ a: Double, _ b: Double, _ k: Double) -> Double {
        let h = max(k - abs(a - b), 0) / k
        return min(a, b) - h * h * k / 4
    }

    /// The head outline modulation on the direction of `q`.
    @inlinable func shapeFactor(_ q: SIMD3<Double>) -> Double {
        let n = max(1e-9, (q * q).sum().squareRoot())
        let x = q.x / n, y = q.y / n, z = q.z / n
        let c = shapeCoefficients
        return 1 + c[0] * x + c[1] * y + c[2] * z + c[3] * x * y + c[4] * y * z + c[5] * x * z + c[6] * (x * x - y * y)
    }

    /// Signed distance (mm) to the skin: the cranial ellipsoid blended with a lower face ellipsoid.
    @inlinable func skinDistance(_ q: SIMD3<Double>) -> Double {
        let f = shapeFactor(q)
        let cranium = Self.ellipsoidDistance(q, craniumAxes * f)
        let a = craniumAxes
        let faceCentre = SIMD3(0, 0.12 * a.y, -0.55 * a.z)
        let face = Self.ellipsoidDistance(q - faceCentre, SIMD3(0.86 * a.x, 0.86 * a.y, 0.75 * a.z) * f)
        return Self.smoothMin(cranium, face, 12)
    }

    /// Height (mm) of the cranial floor at (x, y): anterior fossa highest, middle lower, posterior lowest.
    @inlinable func skullBaseHeight(_ q: SIMD3<Double>) -> Double {
        let b = craniumAxes.y, c = craniumAxes.z
        let anterior = Self.smoothstep(0.15 * b, 0.40 * b, q.y)
        let posterior = Self.smoothstep(-0.05 * b, -0.30 * b, q.y)
        return skullBaseOffset + c * (-0.45 + 0.16 * anterior - 0.22 * posterior) + 0.0015 * q.x * q.x
    }

    // MARK: - Tissue

    /// The tissue at head coordinates `p` (before deformation; `u` is the displacement to apply).
    public func tissue(at p: SIMD3<Double>, displacement u: SIMD3<Double>) -> PhantomTissue {
        let q = p + u
        let skin = skinDistance(q)
        if skin > 0 { return .air }
        let depth = -skin
        if depth < skinThickness { return .skin }
        if depth < skinThickness + fatThickness { return .fat }
        let a = craniumAxes, b = craniumAxes.y
        let lateral = Self.smoothstep(0.55, 0.85, abs(q.x) / a.x) * Self.smoothstep(-0.75 * a.z, -0.3 * a.z, q.z)
            * (1 - Self.smoothstep(0.1 * a.z, 0.45 * a.z, q.z))
        let scalp = skinThickness + fatThickness + 1.0 + temporalisThickness * lateral
        if depth < scalp { return .muscle }

        let base = skullBaseHeight(q)
        if q.z >= base - skullBaseThickness {
            return cranialTissue(q, depth: depth - scalp, base: base)
        }
        return facialTissue(q, depth: depth - scalp, lateral: lateral, b: b)
    }

    /// Skull, skull base and brain; `depth` is measured from the outer surface of the skull.
    @inlinable func cranialTissue(_ q: SIMD3<Double>, depth: Double, base: Double) -> PhantomTissue {
        let a = craniumAxes
        // Forehead: thicker diploë with the frontal sinus inside it.
        let forehead = Self.smoothstep(0.55 * a.y, 0.85 * a.y, q.y) * Self.smoothstep(0.45 * a.z, 0.05 * a.z, q.z)
            * (1 - Self.smoothstep(0.25 * a.x, 0.5 * a.x, abs(q.x)))
        let diploe = self.diploe + frontalThickening * forehead
        let skull = outerTable + diploe + innerTable
        if frontalSinusScale > 0, depth < skull + 4 {
            let centre = SIMD3(0, 0.86 * a.y, 0.12 * a.z)
            let axes = SIMD3(15, 6, 11) * frontalSinusScale
            let d = Self.ellipsoidDistance(q - centre, axes)
            if d < 0 && depth > outerTable + 0.8 { return .sinusAir }
            if d < 1.2 && depth > outerTable - 0.5 && depth < skull + 1.2 { return .corticalBone }
        }
        if depth < outerTable { return .corticalBone }
        if depth < outerTable + diploe { return .cancellousBone }
        if depth < skull { return .corticalBone }

        // Skull base plate: cortical surfaces around cancellous bone, pierced by the sphenoid sinus.
        let aboveBase = q.z - base
        if aboveBase < 0 {
            let sphenoid = Self.ellipsoidDistance(q - SIMD3(0, 0.08 * a.y, base - 0.5 * skullBaseThickness - 4),
                                                  SIMD3(11, 9, 8) * sphenoidScale)
            if sphenoid < 0 { return .sinusAir }
            if sphenoid < 1.2 { return .corticalBone }
            let fromTop = -aboveBase
            return fromTop < 1.2 || fromTop > skullBaseThickness - 1.2 ? .corticalBone : .cancellousBone
        }

        // Brain: depth below the inner table or above the cranial floor, whichever is smaller.
        let brainDepth = min(depth - skull, aboveBase)
        if brainDepth < csfThickness { return .csf }
        let c = a.z
        // Midline fissure above the corpus callosum; tentorium between cerebrum and cerebellum.
        if abs(q.x) < 0.7 && q.z > 0.12 * c && brainDepth < 0.75 * a.x { return .csf }
        let tentorium = base + 0.30 * c + 0.10 * q.y
        let cerebellar = q.y < -0.25 * a.y && q.z < tentorium
        if q.y < -0.2 * a.y && abs(q.z - tentorium) < 0.9 { return .csf }

        // Ventricles (lateral pair, bent down posteriorly; third ventricle in the midline) and deep nuclei.
        let v = ventricleScale
        for sideIndex in 0..<2 {
            let side = sideIndex == 0 ? -1.0 : 1.0
            let centre = SIMD3(side * (3.5 + 3.5 * v), 0.05 * a.y, 0.12 * c)
            var r = q - centre
            r.z += 0.006 * (q.y - centre.y) * (q.y - centre.y)
            if Self.ellipsoidRadius2(r, SIMD3(4.0 * v, 0.30 * a.y, 5.0 * v)) < 1 { return .csf }
        }
        if abs(q.x) < 1.2 * v && abs(q.y + 0.02 * a.y) < 0.12 * a.y && q.z > -0.18 * c && q.z < 0.05 * c { return .csf }
        for sideIndex in 0..<2 {
            let side = sideIndex == 0 ? -1.0 : 1.0
            if Self.ellipsoidRadius2(q - SIMD3(side * (8 + 2 * v), -0.07 * a.y, -0.02 * c), SIMD3(7, 11, 8)) < 1 {
                return .deepGreyMatter
            }
            if Self.ellipsoidRadius2(q - SIMD3(side * (21 + 2 * v), 0.10 * a.y, 0.0), SIMD3(4.5, 12, 9)) < 1 {
                return .deepGreyMatter
            }
        }

        // Cortex with gyral folding (grey matter thickness varies by ±foldAmplitude); the cerebellum's cortex
        // is thicker with finer folia.
        if cerebellar {
            let folia = sin(0.55 * q.z + 0.2 * q.y + foldPhase.x)
            return brainDepth < csfThickness + 2 * greyMatterThickness + 2.5 * folia ? .greyMatter : .whiteMatter
        }
        let w = 2 * Double.pi / 24
        let fold = sin(w * q.x + foldPhase.x) * sin(w * q.y + foldPhase.y) * sin(w * q.z + foldPhase.z)
        return brainDepth < csfThickness + greyMatterThickness + foldAmplitude * (1 + fold) ? .greyMatter : .whiteMatter
    }

    /// Below the skull base: orbits, sinuses, nasal cavity, facial bone and muscle; `depth` from under the scalp.
    @inlinable func facialTissue(_ q: SIMD3<Double>, depth: Double, lateral: Double, b: Double) -> PhantomTissue {
        let a = craniumAxes, c = a.z
        let anteriorBase = skullBaseOffset + c * (-0.45 + 0.16)
        // Orbits: eyeball (vitreous) in orbital fat inside a thin bony cone.
        for sideIndex in 0..<2 {
            let side = sideIndex == 0 ? -1.0 : 1.0
            let eye = SIMD3(side * 0.44 * a.x, 0.74 * b, anteriorBase - 13)
            let r = q - eye
            let eyeRadius2 = (r * r).sum()
            if eyeRadius2 < 11 * 11 { return .vitreous }
            let orbitAxes = SIMD3<Double>(15, 22, 14)
            let orbit = Self.ellipsoidDistance(r + SIMD3(0, 8, 0), orbitAxes)
            if orbit < 0 { return .fat }
            if orbit < 1.5 { return .corticalBone }
        }
        // Maxillary sinuses, lined with thin bone.
        for sideIndex in 0..<2 {
            let side = sideIndex == 0 ? -1.0 : 1.0
            let s = maxillaryScale[sideIndex]
            let d = Self.ellipsoidDistance(q - SIMD3(side * 0.33 * a.x, 0.52 * b, anteriorBase - 34),
                                           SIMD3(12, 15, 15) * s)
            if d < 0 { return .sinusAir }
            if d < 1.5 { return .corticalBone }
        }
        // Nasal cavity with a bony septum.
        let nasalTop = anteriorBase - 10, nasalBottom = anteriorBase - 58
        if q.y > 0.45 * b && q.z < nasalTop && q.z > nasalBottom && abs(q.x) < 9 && depth > 2 {
            if abs(q.x) < 0.9 { return .corticalBone }
            return abs(q.x) < 7.5 && q.z < nasalTop - 1.5 && q.z > nasalBottom + 1.5 ? .sinusAir : .corticalBone
        }
        // Facial skeleton under the anterior soft tissue; the rest is muscle.
        if q.y > 0.25 * b && depth < 2.0 { return .corticalBone }
        return .muscle
    }
}
