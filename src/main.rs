//! The podinit binary: everything is in the library (src/lib.rs).

fn main() {
    podinit::main()
}
