//! Golden hashes of each kind's seeded mining step (DESIGN.md §4): consensus vectors.
//!
//! The same file must pass in debug, release and `-C target-cpu=native` builds
//! (`scripts/golden.sh` runs all three).

mod common;

use gradientcoin::compute::attention::{AttentionSynthetic, Kernel};
use gradientcoin::compute::copyright::{Copyright, CopyrightVariant};
use gradientcoin::compute::det::bits_hash;
use gradientcoin::compute::nmr::Phi;
use gradientcoin::compute::problem::{Certificate, Problem};
use gradientcoin::compute::ricl::RiclSynthetic;
use gradientcoin::compute::softmax::{SoftmaxOptions, SoftmaxProblem, Synthetic, damping, uniform_reg};
use std::collections::BTreeMap;

fn cert_bits(c: &Certificate) -> Vec<f64> {
    let mut v = vec![c.score, c.loss, c.grad_norm];
    v.extend(c.figures.iter().map(|f| f.value));
    v
}

fn cases() -> Vec<(String, Box<dyn Problem>)> {
    let mut out: Vec<(String, Box<dyn Problem>)> = Vec::new();
    for (name, phi) in
        [("softmax", Phi::Softmax), ("resnet_softmax", Phi::ResnetSoftmax), ("linear_elu", Phi::EluPlusOne)]
    {
        for (n, d) in [(300, 8), (2000, 32)] {
            let syn = Synthetic { n, d, seed: 1, scale: 0.5 };
            let (a, b, _) = syn.generate(phi).expect("synthetic data");
            let opts = SoftmaxOptions { w2: Some(uniform_reg(1e-8, n)), ..Default::default() };
            out.push((
                format!("{name}/n{n}_d{d}"),
                Box::new(SoftmaxProblem::new(phi, a, b, opts).expect("valid task")),
            ));
        }
    }
    for (vname, variant) in [
        ("all", CopyrightVariant::All),
        ("unprotected", CopyrightVariant::UnprotectedOnly),
        ("per_block", CopyrightVariant::PerBlock),
    ] {
        for (name, phi) in [("softmax", Phi::Softmax), ("resnet_softmax", Phi::ResnetSoftmax)] {
            let syn = Synthetic { n: 400, d: 12, seed: 2, scale: 1.0 };
            let (a, b, _) = syn.generate(phi).expect("synthetic data");
            let cr = Copyright { rows: syn.protected_rows(40), gamma: 1e-9, variant };
            let opts = SoftmaxOptions { w2: Some(uniform_reg(1e-4, 400)), mask: None, copyright: Some(cr) };
            out.push((
                format!("{name}+copyright_{vname}/n400_d12"),
                Box::new(SoftmaxProblem::new(phi, a, b, opts).expect("valid task")),
            ));
        }
    }
    for (name, kernel) in [("attention", Kernel::Softmax), ("attention_linear", Kernel::Linear)] {
        for (n, d) in [(64, 4), (160, 8)] {
            let syn = AttentionSynthetic { n, d, seed: 1, scale: 1.0 };
            let (p, _) = syn.problem(kernel, 1e-8).expect("valid task");
            out.push((format!("{name}/n{n}_d{d}"), Box::new(p)));
        }
    }
    for (m, d, v, flip) in [(16, 3, 64, 0.9), (64, 4, 256, 0.9), (64, 4, 256, 0.0)] {
        let syn = RiclSynthetic { m, d, v, test: 0, seed: 1, flip };
        let (p, _) = syn.problem(1e-4).expect("valid task");
        out.push((format!("ricl/m{m}_d{d}_v{v}_flip{flip}"), Box::new(p)));
    }
    out
}

#[test]
fn golden_step_hashes_of_every_kind() {
    let mut computed = BTreeMap::new();
    // The first seed `[k; 32]` (k >= 3) whose ticket is damped, and its ridge multiplier:
    // pins the damping draw, and a damped step of every kind below.
    let k = (3u8..=255).find(|k| damping(&[*k; 32]) > 1.0).expect("one seed in 8 is damped");
    computed.insert("damping/first_damped_seed_byte".into(), k.to_string());
    computed.insert("damping/multiplier".into(), damping(&[k; 32]).to_string());
    for (name, p) in cases() {
        let x0 = p.init();
        let s1 = p.step(&x0, &[1u8; 32]).expect("step from init");
        let s2 = p.step(&s1.params, &[2u8; 32]).expect("second step");
        computed.insert(format!("{name}/cost_mwu"), p.cost().to_string());
        computed.insert(format!("{name}/step1_params"), s1.params.hash().to_string());
        computed.insert(format!("{name}/step1_output_hash"), s1.output_hash().to_string());
        computed.insert(format!("{name}/step2_params"), s2.params.hash().to_string());
        computed.insert(format!("{name}/step2_output_hash"), s2.output_hash().to_string());
        computed.insert(format!("{name}/step2_objective"), bits_hash(&[s2.objective]).to_string());
        let cert = p.certify(&s2.params).expect("certificate");
        // The step's own objective is the certificate's score, bit for bit.
        assert_eq!(cert.score.to_bits(), s2.objective.to_bits(), "{name}");
        computed.insert(format!("{name}/step2_certificate"), bits_hash(&cert_bits(&cert)).to_string());
        let s3 = p.step(&s2.params, &[k; 32]).expect("damped step");
        computed.insert(format!("{name}/step3_damped_output_hash"), s3.output_hash().to_string());
    }
    common::vectors::check("steps", &computed);
}
