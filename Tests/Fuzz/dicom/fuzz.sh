#!/bin/sh
# The DICOM reader's fuzz run (issue 19) and the minimised corpus it leaves: run from the package root.
#   Tests/Fuzz/dicom/fuzz.sh [SECONDS]        (default 1800)
# 1. builds FuzzDICOMReader with libFuzzer + AddressSanitizer (the Swift code and the CDCMTK bridge instrumented;
#    DCMTK itself is Debian's uninstrumented build, so its inside gives no coverage, though ASan's interceptors
#    still check the memory functions it calls);
# 2. writes the seeds (Tests/Fuzz/dicom/make_seeds.py: the committed fixture series, up to three files an input);
# 3. fuzzes one worker for SECONDS with the DICOM dictionary, a 10 s timeout per input, crash inputs kept in
#    /tmp/dicom-fuzz/artifacts (fork mode with -ignore_crashes, so that a crash does not end the run);
# 4. merges seeds and the run's corpus into a fresh minimal set (-merge=1) that replaces Tests/Fuzz/dicom/corpus,
#    which DICOMFuzzRegressionTests replays in every `swift test`.
set -eu
seconds=${1:-1800}
work=/tmp/dicom-fuzz
mkdir -p "$work/corpus" "$work/artifacts" "$work/seeds"
nice swift build -c release --product FuzzDICOMReader --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xcxx -fsanitize=fuzzer-no-link,address -Xswiftc -DFUZZING
python3 Tests/Fuzz/dicom/make_seeds.py "$work/seeds"
nice .build-fuzz/release/FuzzDICOMReader "$work/corpus" "$work/seeds" Tests/Fuzz/dicom/corpus \
    -dict=Tests/Fuzz/dicom/dicom.dict -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -artifact_prefix="$work/artifacts/" -print_final_stats=1 2>&1 | tee "$work/log.txt"
rm -rf "$work/merged" && mkdir -p "$work/merged"
nice .build-fuzz/release/FuzzDICOMReader -merge=1 -max_len=8192 -timeout=10 "$work/merged" \
    "$work/seeds" "$work/corpus" Tests/Fuzz/dicom/corpus 2>&1 | tail -3
rm -rf Tests/Fuzz/dicom/corpus && cp -r "$work/merged" Tests/Fuzz/dicom/corpus
echo "corpus: $(ls Tests/Fuzz/dicom/corpus | wc -l) inputs, $(du -sk Tests/Fuzz/dicom/corpus | cut -f1) KB; crashes: $(ls $work/artifacts | wc -l) in $work/artifacts"
