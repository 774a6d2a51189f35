//! What `wsp_build::compile()` costs inside a build script, and where the time goes.
//!
//! Build scripts and their dependencies are built without optimisation in a default (debug)
//! build, so run this in the dev profile to see what a user's `build.rs` pays:
//!
//! ```text
//! cargo run -p wsp-build --example compile_cost            # as a debug build script
//! cargo run -p wsp-build --example compile_cost --release # as the release CLI
//! ```
//!
//! The schema is a 100-method service over a handful of types. Prints the median of 31 runs of
//! `compile()` as build scripts run it (the fast layout) and with `.pretty(true)`
//! (prettyplease), with their phases: load (parse, validate, resolve) and generate, and for
//! prettyplease the share of parsing with syn that it needs first.

use std::time::{Duration, Instant};

const RUNS: usize = 31;

fn schema() -> String {
    let mut s = String::from(
        "package cost;\n\n\
         struct Item { id: u64, name: string, tags: list<string>, price: f64, note: string? }\n\
         enum Shape { Circle { r: f64 }, Square { side: f64 }, Nothing }\n\
         error CostError { NotFound { id: u64 }, Invalid { reason: string } }\n\n\
         service Cost {\n",
    );
    for i in 0..100 {
        let line = match i % 4 {
            0 => format!("    rpc get{i}(id: u64) -> Item throws CostError;\n"),
            1 => format!("    rpc put{i}(item: Item, shape: Shape?) -> bool;\n"),
            2 => format!("    rpc list{i}(from: u32, to: u32) -> stream Item;\n"),
            _ => format!("    notify seen{i}(ids: list<u64>, at: i64);\n"),
        };
        s.push_str(&line);
    }
    s.push_str("}\n");
    s
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("wsp-compile-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creates a temp dir");
    let path = dir.join("cost.wsp");
    std::fs::write(&path, schema()).expect("writes the schema");
    let out = dir.join("out");

    let fast = wsp_codegen::Opts {
        pretty: false,
        ..wsp_codegen::Opts::default()
    };
    let (mut load, mut generate_fast, mut generate_pretty, mut parse) =
        (vec![], vec![], vec![], vec![]);
    let (mut whole, mut whole_pretty, mut size) = (vec![], vec![], 0);
    for _ in 0..RUNS {
        let t = Instant::now();
        let model = wsp_idl::load(&[&path]).expect("a valid schema");
        load.push(t.elapsed());

        let t = Instant::now();
        let files = wsp_codegen::generate(&model, &fast).expect("generates");
        generate_fast.push(t.elapsed());
        size = files[0].contents.len();

        let t = Instant::now();
        let files =
            wsp_codegen::generate(&model, &wsp_codegen::Opts::default()).expect("generates");
        generate_pretty.push(t.elapsed());

        // What prettyplease needs first: the file parsed by syn (here from text, about what
        // parsing the generator's tokens costs).
        let t = Instant::now();
        let file = syn::parse_file(&files[0].contents).expect("parses");
        parse.push(t.elapsed());
        assert!(!file.items.is_empty());

        let t = Instant::now();
        wsp_build::configure()
            .out_dir(&out)
            .emit_rerun_if_changed(false)
            .compile(&[&path])
            .expect("compiles");
        whole.push(t.elapsed());

        let t = Instant::now();
        wsp_build::configure()
            .out_dir(&out)
            .emit_rerun_if_changed(false)
            .pretty(true)
            .compile(&[&path])
            .expect("compiles");
        whole_pretty.push(t.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "profile: {}",
        if cfg!(debug_assertions) {
            "dev (as a debug build script)"
        } else {
            "release"
        }
    );
    println!("compile()                 {:7.1} ms", ms(median(whole)));
    println!("  load                    {:7.1} ms", ms(median(load)));
    println!(
        "  generate (fast layout)  {:7.1} ms ({} KB)",
        ms(median(generate_fast)),
        size / 1024
    );
    println!(
        "compile() with pretty(true) {:5.1} ms",
        ms(median(whole_pretty))
    );
    println!(
        "  generate (prettyplease) {:7.1} ms",
        ms(median(generate_pretty))
    );
    println!(
        "    of it, syn parse      {:7.1} ms (about; from text)",
        ms(median(parse))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
