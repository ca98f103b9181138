//! Loss and accuracy curves as a PNG: minibatch values at display steps, test values at epoch
//! ends, against the step.

use std::path::Path;

use plotters::prelude::*;

/// A chart: its title, the top of its y axis and what it plots of a point.
type Panel = (&'static str, f64, fn(&Point) -> f64);

/// One logged point.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub step: u64,
    pub loss: f64,
    pub accuracy: f64,
}

/// Registers a system sans-serif font for the axis labels; without one the curves are drawn
/// without text.
pub fn load_font() -> bool {
    const CANDIDATES: [&str; 4] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/System/Library/Fonts/Supplemental/Arial.ttf",
    ];
    for path in CANDIDATES {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Draws `train` and `test` into `path` (written to a temporary name, then renamed).
pub fn draw(
    path: &Path,
    title: &str,
    train: &[Point],
    test: &[Point],
    text: bool,
) -> Result<(), String> {
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1200, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = if text {
            root.titled(title, ("sans-serif", 22))
                .map_err(|e| e.to_string())?
        } else {
            root
        };
        let panels = root.split_evenly((1, 2));
        let max_step = train
            .iter()
            .chain(test)
            .map(|p| p.step)
            .max()
            .unwrap_or(1)
            .max(1);
        let max_loss = train
            .iter()
            .chain(test)
            .map(|p| p.loss)
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.05;
        let series: [Panel; 2] = [
            ("loss", max_loss, |p| p.loss),
            ("accuracy", 1.0, |p| p.accuracy),
        ];
        for (panel, (name, top, value)) in panels.iter().zip(series) {
            let mut builder = ChartBuilder::on(panel);
            builder.margin(12);
            if text {
                builder
                    .caption(name, ("sans-serif", 18))
                    .x_label_area_size(35)
                    .y_label_area_size(50);
            }
            let mut chart = builder
                .build_cartesian_2d(0u64..max_step, 0.0..top)
                .map_err(|e| e.to_string())?;
            let mut mesh = chart.configure_mesh();
            if text {
                mesh.x_desc("step");
            } else {
                mesh.disable_x_axis().disable_y_axis();
            }
            mesh.draw().map_err(|e| e.to_string())?;
            let line = |pts: &[Point]| pts.iter().map(|p| (p.step, value(p))).collect::<Vec<_>>();
            let a = chart
                .draw_series(LineSeries::new(line(train), BLUE.stroke_width(1)))
                .map_err(|e| e.to_string())?;
            if text {
                a.label("minibatch")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
            }
            let b = chart
                .draw_series(LineSeries::new(line(test), RED.stroke_width(3)))
                .map_err(|e| e.to_string())?;
            if text {
                b.label("test")
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
