//! `opml run`: a model run locally in the fast engine (optionally cross-checked by the stepper).

use std::sync::Arc;
use std::time::Instant;

use opml_vm::guest::GuestProgram;
use opml_vm::io::Inputs;
use opml_vm::{Limits, NoHost, StateHasher, Status};

use crate::model;
use crate::progress::Output;

/// Lowercase hex of `h`.
pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `model` on `input` in the fast engine (and with `stepper`, also in the stepping machine, checking both
/// reach the same roots) and prints the output and commitments on `out`.
pub fn run(model: &str, input: &str, stepper: bool, out: &Output) -> Result<(), String> {
    let json = out.json;
    let model = model::find(model)?;
    let program = GuestProgram::new(model.wasm).map_err(|e| format!("the {} guest is invalid: {e}", model.name))?;
    let inputs = Arc::new(Inputs::new(model::blobs(model, input)?));
    let limits = Limits::default();
    let bar = out.progress.inference(&format!("running {}", model.name));
    let result = opml_vm::fast::run_observed(&program, inputs.clone(), limits, true, &mut |n| bar.segment(n))
        .map_err(|e| e.to_string())?;
    drop(bar);
    let status = match result.status {
        Status::Halted => "halted".to_string(),
        Status::Trapped(t) => format!("trapped: {t} (code {})", t as u8),
        other => format!("{other:?}"),
    };
    let mut stepper_report = None;
    if stepper {
        let start = Instant::now();
        let mut m = program.machine(inputs.clone(), limits).map_err(|e| e.to_string())?;
        let mut hasher = StateHasher::new();
        let mut roots = vec![hasher.root(&m)];
        let bar = out.progress.inference(&format!("stepping {} (of {} segments)", model.name, result.segments()));
        while matches!(m.status(), Status::Idle | Status::Running) {
            m.run(&mut NoHost, u64::MAX).map_err(|e| e.to_string())?;
            roots.push(hasher.root(&m));
            bar.segment(roots.len() as u64 - 1);
        }
        drop(bar);
        if roots != result.segment_roots {
            return Err(format!(
                "the stepper's roots differ from the fast engine's (stepper final {}, fast final {}): this is a VM bug",
                hex(roots.last().expect("roots")),
                hex(&result.final_root())
            ));
        }
        stepper_report = Some((m.steps(), start.elapsed()));
    }
    if json {
        let mut v = serde_json::json!({
            "model": model.name,
            "status": status,
            "output_hex": hex(&result.output),
            "output_hash": hex(&result.output_hash),
            "input_root": hex(&inputs.root()),
            "final_root": hex(&result.final_root()),
            "segments": result.segments(),
            "segment_roots": result.segment_roots.iter().map(|r| hex(r)).collect::<Vec<_>>(),
            "seconds": result.elapsed.as_secs_f64(),
            "root_seconds": result.root_time.as_secs_f64(),
            "peak_memory_bytes": result.peak_memory,
        });
        if let Some((steps, t)) = stepper_report {
            v["stepper"] = serde_json::json!({ "steps": steps, "seconds": t.as_secs_f64(), "roots_match": true });
        }
        println!("{v}");
    } else {
        println!("model        {}", model.name);
        println!("status       {status}");
        println!("output       {}", model::describe_output(model, &result.output));
        println!("output hash  {}", hex(&result.output_hash));
        println!("input root   {}", hex(&inputs.root()));
        println!("final root   {}", hex(&result.final_root()));
        println!("segments     {}", result.segments());
        println!(
            "time         {:.3} s (roots {:.3} s), peak guest memory {:.1} MiB",
            result.elapsed.as_secs_f64(),
            result.root_time.as_secs_f64(),
            result.peak_memory as f64 / (1 << 20) as f64
        );
        if let Some((steps, t)) = stepper_report {
            println!(
                "stepper      same roots at all {} boundaries; {steps} steps in {:.3} s",
                result.segment_roots.len(),
                t.as_secs_f64()
            );
        }
    }
    Ok(())
}
