/// The tissue classes of the head phantom, with the label value written to label maps.
public enum PhantomTissue: UInt8, CaseIterable, Codable, Sendable {
    case air = 0
    case skin = 1
    case fat = 2
    case muscle = 3
    case corticalBone = 4
    case cancellousBone = 5
    case csf = 6
    case greyMatter = 7
    case whiteMatter = 8
    case deepGreyMatter = 9
    case vitreous = 10
    case sinusAir = 11

    public var name: String {
        switch self {
        case .air: "air"
        case .skin: "skin"
        case .fat: "fat"
        case .muscle: "muscle"
        case .corticalBone: "cortical bone"
        case .cancellousBone: "cancellous bone"
        case .csf: "CSF"
        case .greyMatter: "grey matter"
        case .whiteMatter: "white matter"
        case .deepGreyMatter: "deep grey matter"
        case .vitreous: "vitreous"
        case .sinusAir: "sinus air"
        }
    }

    /// The range (HU) from which each subject draws this tissue's mean CT number. Sources: typical values in
    /// Hounsfield (1973) and radiology texts (fat −120…−80, CSF 0…15, white matter 20…30, grey matter 35…45,
    /// cancellous bone 300…800, cortical bone up to ~1900 in the skull vault).
    public var ctRange: ClosedRange<Double> {
        switch self {
        case .air, .sinusAir: -1000 ... -1000
        case .skin: 30 ... 50
        case .fat: -110 ... -85
        case .muscle: 40 ... 55
        case .corticalBone: 1450 ... 1850
        case .cancellousBone: 350 ... 700
        case .csf: 6 ... 12
        case .greyMatter: 36 ... 42
        case .whiteMatter: 24 ... 30
        case .deepGreyMatter: 33 ... 39
        case .vitreous: 6 ... 14
        }
    }

    /// The range from which each subject draws this tissue's T1-weighted signal, relative to white matter = 1:
    /// fat brightest, white matter brighter than grey matter, fatty marrow of the diploë intermediate-bright, CSF
    /// and vitreous dark, cortical bone and air (no mobile protons) black.
    public var t1Range: ClosedRange<Double> {
        switch self {
        case .air, .sinusAir: 0 ... 0
        case .skin: 0.55 ... 0.65
        case .fat: 1.25 ... 1.40
        case .muscle: 0.40 ... 0.50
        case .corticalBone: 0.02 ... 0.06
        case .cancellousBone: 0.70 ... 0.90
        case .csf: 0.12 ... 0.20
        case .greyMatter: 0.58 ... 0.66
        case .whiteMatter: 1 ... 1
        case .deepGreyMatter: 0.70 ... 0.78
        case .vitreous: 0.10 ... 0.18
        }
    }
}
