//! L-BFGS with a strong-Wolfe line search (Nocedal & Wright, Algorithms 7.4, 3.5 and 3.6), on flat f64
//! vectors. Written here because neither Candle nor a maintained pure-Rust crate offers L-BFGS that works on a
//! closure returning (value, gradient) from autograd; the image being optimised is small enough (~10^5..10^6
//! values) that plain vectors cost nothing next to a VGG forward/backward.

use anyhow::Result;

#[derive(Clone, Copy, Debug)]
pub struct LbfgsConfig {
    /// Number of (s, y) pairs kept.
    pub history: usize,
    /// Stop when the largest gradient component falls below this.
    pub tolerance_grad: f64,
    /// Stop when a step changes the value or the point by less than this.
    pub tolerance_change: f64,
    /// Function evaluations allowed per line search.
    pub max_line_evals: usize,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        Self { history: 100, tolerance_grad: 1e-7, tolerance_change: 1e-12, max_line_evals: 25 }
    }
}

/// Minimiser state; `step` runs one iteration (one line search).
pub struct Lbfgs {
    config: LbfgsConfig,
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    rho: Vec<f64>,
    /// Value and gradient at the current point (after the first evaluation).
    current: Option<(f64, Vec<f64>)>,
    pub evaluations: usize,
    pub converged: bool,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimiser of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to the interval (N&W eq. 3.59).
fn cubic_min(x1: f64, f1: f64, g1: f64, x2: f64, f2: f64, g2: f64) -> f64 {
    let (lo, hi) = if x1 <= x2 { (x1, x2) } else { (x2, x1) };
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let sq = d1 * d1 - g1 * g2;
    if sq >= 0.0 {
        let d2 = sq.sqrt() * (x2 - x1).signum();
        let t = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2));
        if t.is_finite() {
            return t.clamp(lo, hi);
        }
    }
    0.5 * (lo + hi)
}

impl Lbfgs {
    pub fn new(config: LbfgsConfig) -> Self {
        Self { config, s: vec![], y: vec![], rho: vec![], current: None, evaluations: 0, converged: false }
    }

    /// Two-loop recursion: the quasi-Newton direction `-H g`.
    fn direction(&self, g: &[f64]) -> Vec<f64> {
        let mut q: Vec<f64> = g.iter().map(|v| -v).collect();
        let k = self.s.len();
        let mut alpha = vec![0.0; k];
        for i in (0..k).rev() {
            alpha[i] = self.rho[i] * dot(&self.s[i], &q);
            q.iter_mut().zip(&self.y[i]).for_each(|(q, y)| *q -= alpha[i] * y);
        }
        if k > 0 {
            let gamma = dot(&self.s[k - 1], &self.y[k - 1]) / dot(&self.y[k - 1], &self.y[k - 1]);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for i in 0..k {
            let beta = self.rho[i] * dot(&self.y[i], &q);
            q.iter_mut().zip(&self.s[i]).for_each(|(q, s)| *q += (alpha[i] - beta) * s);
        }
        q
    }

    /// One iteration from `x` (updated in place). `f` returns value and gradient. Returns the new value.
    pub fn step(&mut self, x: &mut [f64], mut f: impl FnMut(&[f64]) -> Result<(f64, Vec<f64>)>) -> Result<f64> {
        let (f0, g0) = match self.current.take() {
            Some(c) => c,
            None => {
                self.evaluations += 1;
                f(x)?
            }
        };
        if max_abs(&g0) <= self.config.tolerance_grad {
            self.converged = true;
            self.current = Some((f0, g0));
            return Ok(f0);
        }
        let d = self.direction(&g0);
        let gd0 = dot(&g0, &d);
        let (d, gd0) = if gd0 < 0.0 {
            (d, gd0)
        } else {
            // Not a descent direction (bad curvature pairs): restart with steepest descent.
            self.s.clear();
            self.y.clear();
            self.rho.clear();
            let d: Vec<f64> = g0.iter().map(|v| -v).collect();
            let gd = dot(&g0, &d);
            (d, gd)
        };
        // First iteration: a step of length ~1 in the L1 sense, as torch.optim.LBFGS does.
        let t0 = if self.s.is_empty() { (1.0 / g0.iter().map(|v| v.abs()).sum::<f64>()).min(1.0) } else { 1.0 };
        let x0 = x.to_vec();
        let mut eval = |t: f64, evals: &mut usize| -> Result<(f64, Vec<f64>, f64)> {
            let xt: Vec<f64> = x0.iter().zip(&d).map(|(x, d)| x + t * d).collect();
            *evals += 1;
            let (v, g) = f(&xt)?;
            let gd = dot(&g, &d);
            Ok((v, g, gd))
        };
        let (t, ft, gt) = strong_wolfe(&mut eval, f0, gd0, t0, self.config.max_line_evals, &mut self.evaluations)?;
        for (xi, di) in x.iter_mut().zip(&d) {
            *xi += t * di;
        }
        let s: Vec<f64> = d.iter().map(|v| t * v).collect();
        let y: Vec<f64> = gt.iter().zip(&g0).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-10 {
            if self.s.len() == self.config.history {
                self.s.remove(0);
                self.y.remove(0);
                self.rho.remove(0);
            }
            self.s.push(s.clone());
            self.y.push(y);
            self.rho.push(1.0 / sy);
        }
        if (ft - f0).abs() < self.config.tolerance_change || max_abs(&s) < self.config.tolerance_change {
            self.converged = true;
        }
        self.current = Some((ft, gt));
        Ok(ft)
    }
}

type Eval<'a> = dyn FnMut(f64, &mut usize) -> Result<(f64, Vec<f64>, f64)> + 'a;

/// Strong-Wolfe line search (c1 = 1e-4, c2 = 0.9): returns step length, value and gradient there.
fn strong_wolfe(eval: &mut Eval, f0: f64, gd0: f64, t_init: f64, max_evals: usize, evals: &mut usize) -> Result<(f64, f64, Vec<f64>)> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let start = *evals;
    let (mut t_prev, mut f_prev, mut gd_prev) = (0.0, f0, gd0);
    let mut g_prev: Option<Vec<f64>> = None;
    let mut t = t_init;
    // Bracketing phase.
    let (mut lo, mut hi);
    loop {
        let (ft, gt, gdt) = eval(t, evals)?;
        if !ft.is_finite() {
            // Overshot into overflow: shrink.
            t *= 0.1;
            if *evals - start >= max_evals {
                return Ok((0.0, f0, g_prev.unwrap_or_default()));
            }
            continue;
        }
        if ft > f0 + C1 * t * gd0 || (*evals - start > 1 && ft >= f_prev) {
            lo = (t_prev, f_prev, gd_prev, g_prev.take());
            hi = (t, ft, gdt, Some(gt));
            break;
        }
        if gdt.abs() <= -C2 * gd0 {
            return Ok((t, ft, gt));
        }
        if gdt >= 0.0 {
            lo = (t, ft, gdt, Some(gt));
            hi = (t_prev, f_prev, gd_prev, g_prev.take());
            break;
        }
        if *evals - start >= max_evals {
            return Ok((t, ft, gt));
        }
        let next = (t * 2.0).max(cubic_min(t_prev, f_prev, gd_prev, t, ft, gdt)).min(t * 10.0);
        t_prev = t;
        f_prev = ft;
        gd_prev = gdt;
        g_prev = Some(gt);
        t = next;
    }
    // Zoom phase: lo always satisfies sufficient decrease and has the lower value.
    loop {
        let (a, b) = (lo.0.min(hi.0), lo.0.max(hi.0));
        let mut t = cubic_min(lo.0, lo.1, lo.2, hi.0, hi.1, hi.2);
        // Keep away from the ends so the interval shrinks.
        let margin = 0.1 * (b - a);
        if t - a < margin || b - t < margin {
            t = 0.5 * (a + b);
        }
        let (ft, gt, gdt) = eval(t, evals)?;
        if !ft.is_finite() || ft > f0 + C1 * t * gd0 || ft >= lo.1 {
            hi = (t, ft, gdt, Some(gt));
        } else {
            if gdt.abs() <= -C2 * gd0 {
                return Ok((t, ft, gt));
            }
            if gdt * (hi.0 - lo.0) >= 0.0 {
                hi = lo.clone();
            }
            lo = (t, ft, gdt, Some(gt));
        }
        if *evals - start >= max_evals || (b - a).abs() < 1e-14 * b.abs().max(1e-300) {
            // Out of budget: take the best point found (t = 0 when none decreased the value).
            return match lo.3 {
                Some(g) => Ok((lo.0, lo.1, g)),
                None => {
                    let (f, g, _) = eval(0.0, evals)?;
                    Ok((0.0, f, g))
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64]) -> Result<(f64, Vec<f64>)> {
        let mut f = 0.0;
        let mut g = vec![0.0; x.len()];
        for i in 0..x.len() - 1 {
            let a = x[i + 1] - x[i] * x[i];
            let b = 1.0 - x[i];
            f += 100.0 * a * a + b * b;
            g[i] += -400.0 * a * x[i] - 2.0 * b;
            g[i + 1] += 200.0 * a;
        }
        Ok((f, g))
    }

    #[test]
    fn minimises_rosenbrock() -> Result<()> {
        for n in [2, 10] {
            let mut x: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { -1.2 } else { 1.0 }).collect();
            let mut opt = Lbfgs::new(LbfgsConfig::default());
            let mut value = f64::INFINITY;
            for _ in 0..200 {
                value = opt.step(&mut x, rosenbrock)?;
                if opt.converged {
                    break;
                }
            }
            assert!(value < 1e-12, "n = {n}: f = {value}");
            assert!(x.iter().all(|v| (v - 1.0).abs() < 1e-5), "n = {n}: x = {x:?}");
            assert!(opt.evaluations < 400, "n = {n}: {} evaluations", opt.evaluations);
        }
        Ok(())
    }

    #[test]
    fn quadratic_in_few_iterations() -> Result<()> {
        // f = sum_i i * x_i^2: L-BFGS with exact-enough line search converges in about n iterations.
        let f = |x: &[f64]| -> Result<(f64, Vec<f64>)> {
            let v = x.iter().enumerate().map(|(i, v)| (i + 1) as f64 * v * v).sum();
            Ok((v, x.iter().enumerate().map(|(i, v)| 2.0 * (i + 1) as f64 * v).collect()))
        };
        let mut x = vec![1.0; 5];
        let mut opt = Lbfgs::new(LbfgsConfig::default());
        let mut v = 0.0;
        for _ in 0..20 {
            v = opt.step(&mut x, f)?;
        }
        assert!(v < 1e-16, "{v}");
        Ok(())
    }
}
