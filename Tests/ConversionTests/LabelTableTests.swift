import Testing
import Conversion
import Evaluation

/// BIDS segmentation tables (dseg.tsv) naming labels for `mr2ct evaluate --labels`.
struct LabelTableTests {
    @Test func indexAndNameColumnsAreReadWhereverTheyStand() throws {
        let text = "name\tabbreviation\tindex\nair\tA\t0\nsinus air\tSA\t11\n\n"
        #expect(try LabelTable.parse(text) == [0: "air", 11: "sinus air"])
        #expect(try LabelTable.parse("index\tname\r\n4\tcortical bone\r\n") == [4: "cortical bone"])
    }

    @Test(arguments: ["0\tair\n", "index,name\n0,air\n", "index\tname\nx\tair\n", "index\tname\n1\tskin\n1\tfat\n",
                      "index\tname\n-2\tair\n", "index\tname\n3\n"])
    func malformedTablesAreRefused(_ text: String) {
        #expect(throws: EvaluationError.self) { try LabelTable.parse(text) }
    }
}
