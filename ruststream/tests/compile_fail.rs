//! Compile-fail tests: a message cannot be settled twice.

#[test]
fn double_settlement_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
