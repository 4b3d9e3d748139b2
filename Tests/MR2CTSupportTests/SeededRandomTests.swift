import Testing
import MR2CTSupport

@Test func seededRandomIsReproducibleAndRestorable() throws {
    var a = SeededRandom(seed: 42)
    var b = SeededRandom(seed: 42)
    for _ in 0..<5 { _ = a.next(); _ = b.next() }
    let saved = a
    let fromA = (0..<10).map { _ in a.next() }
    #expect(fromA == (0..<10).map { _ in b.next() })
    var restored = saved
    #expect((0..<10).map { _ in restored.next() } == fromA)
    #expect(SeededRandom(seed: 1).state != SeededRandom(seed: 2).state)
}

@Test func unitFloatsAreInRangeAndNormalsHaveTheRightMoments() {
    var r = SeededRandom(seed: 7)
    let n = 200_000
    var sum = 0.0, sumSq = 0.0
    for _ in 0..<n {
        let u = r.nextUnitFloat()
        #expect(u >= 0 && u < 1)
        let g = r.nextNormal(mean: 2, standardDeviation: 3)
        sum += g; sumSq += g * g
    }
    let mean = sum / Double(n), variance = sumSq / Double(n) - mean * mean
    #expect(abs(mean - 2) < 0.03)
    #expect(abs(variance.squareRoot() - 3) < 0.03)
}
