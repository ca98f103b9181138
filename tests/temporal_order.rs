//! The generated "temporal order" data set (Hochreiter & Schmidhuber 1997, experiment 6a).

use lstm_wgpu::Error;
use lstm_wgpu::data::SequenceDataset;
use lstm_wgpu::data::temporal_order::{
    CLASS_NAMES, SYMBOLS, TemporalOrderConfig, decode, generate, train_test,
};
use ndarray::{Array3, ArrayView2, Axis};

fn default_set(n: usize, seed: u64) -> SequenceDataset {
    generate(&TemporalOrderConfig::default(), n, seed).unwrap()
}

fn sequences(data: &SequenceDataset) -> impl Iterator<Item = ArrayView2<'_, f32>> {
    data.inputs.outer_iter()
}

/// The positions (counted from the `B`) and symbols of the `X`/`Y` elements of a decoded sequence.
fn relevant(text: &str) -> Vec<(usize, char)> {
    text.chars()
        .enumerate()
        .filter(|&(_, c)| c == 'X' || c == 'Y')
        .collect()
}

#[test]
fn shape_is_n_by_max_len_by_eight_with_four_classes() {
    let data = default_set(5, 1);
    assert_eq!(data.inputs.shape(), &[5, 110, 8]);
    assert_eq!(data.labels.len(), 5);
    assert_eq!(data.num_classes, 4);
    assert_eq!(data.name, "temporal-order");
}

#[test]
fn same_seed_gives_identical_data() {
    assert_eq!(default_set(50, 42), default_set(50, 42));
}

#[test]
fn different_seeds_give_different_data() {
    let a = default_set(50, 42);
    let b = default_set(50, 43);
    assert_ne!(a.inputs, b.inputs);
}

#[test]
fn every_sequence_is_b_distractors_two_relevant_symbols_in_range_then_e() {
    let data = default_set(300, 3);
    for (n, seq) in sequences(&data).enumerate() {
        let text = decode(seq);
        assert!((100..=110).contains(&text.len()), "{n}: {text}");
        assert!(text.starts_with('B'), "{n}: {text}");
        assert!(text.ends_with('E'), "{n}: {text}");
        let rel = relevant(&text);
        assert_eq!(rel.len(), 2, "{n}: {text}");
        assert!((10..=20).contains(&rel[0].0), "{n}: t1 = {}", rel[0].0);
        assert!((50..=60).contains(&rel[1].0), "{n}: t2 = {}", rel[1].0);
        for (pos, c) in text.chars().enumerate() {
            let inner = pos != 0 && pos != text.len() - 1 && pos != rel[0].0 && pos != rel[1].0;
            if inner {
                assert!("abcd".contains(c), "{n}: {c:?} at {pos} in {text}");
            }
        }
    }
}

#[test]
fn sequences_start_at_step_0_and_are_padded_with_zeros_after_their_recorded_length() {
    let data = default_set(300, 4);
    let lengths = data
        .lengths
        .as_ref()
        .expect("the data set records its lengths");
    for (n, seq) in sequences(&data).enumerate() {
        let len = decode(seq).len();
        assert_eq!(lengths[n], len, "{n}: recorded length");
        for (t, step) in seq.outer_iter().enumerate() {
            if t >= len {
                assert!(
                    step.iter().all(|&v| v == 0.0),
                    "{n}: step {t} is not padding"
                );
            } else {
                let ones = step.iter().filter(|&&v| v == 1.0).count();
                let zeros = step.iter().filter(|&&v| v == 0.0).count();
                assert_eq!((ones, zeros), (1, 7), "{n}: step {t} is not one-hot");
            }
        }
        let last = seq.index_axis(Axis(0), len - 1);
        assert_eq!(last[7], 1.0, "{n}: step {} is not the E", len - 1);
    }
}

#[test]
fn label_is_the_order_of_x_and_y() {
    let data = default_set(300, 5);
    for (seq, &label) in sequences(&data).zip(&data.labels) {
        let text = decode(seq);
        let order: String = relevant(&text).iter().map(|&(_, c)| c).collect();
        assert_eq!(order, CLASS_NAMES[usize::from(label)], "{text}");
    }
}

#[test]
fn all_four_classes_appear_roughly_balanced() {
    let data = default_set(1000, 6);
    let mut counts = [0usize; 4];
    for &label in &data.labels {
        counts[usize::from(label)] += 1;
    }
    assert!(counts.iter().all(|c| (150..=350).contains(c)), "{counts:?}");
}

#[test]
fn lengths_cover_both_100_and_110() {
    let data = default_set(1000, 7);
    let lengths: Vec<usize> = sequences(&data).map(|s| decode(s).len()).collect();
    assert!(lengths.contains(&100));
    assert!(lengths.contains(&110));
}

#[test]
fn custom_config_sets_padded_length_and_positions() {
    let config = TemporalOrderConfig {
        min_len: 8,
        max_len: 12,
        t1: (1, 2),
        t2: (4, 6),
    };
    let data = generate(&config, 200, 8).unwrap();
    assert_eq!(data.seq_len(), 12);
    for seq in sequences(&data) {
        let text = decode(seq);
        assert!((8..=12).contains(&text.len()), "{text}");
        let rel = relevant(&text);
        assert!(
            (1..=2).contains(&rel[0].0) && (4..=6).contains(&rel[1].0),
            "{text}"
        );
    }
}

#[test]
fn decode_renders_symbols_and_skips_padding() {
    let mut seq = ndarray::Array2::<f32>::zeros((4, 8));
    seq[[1, 6]] = 1.0; // B
    seq[[2, 4]] = 1.0; // X
    seq[[3, 7]] = 1.0; // E
    assert_eq!(decode(seq.view()), "BXE");
    assert_eq!(SYMBOLS, ['a', 'b', 'c', 'd', 'X', 'Y', 'B', 'E']);
}

fn assert_config_error(config: TemporalOrderConfig) {
    match generate(&config, 10, 0) {
        Err(Error::Config { .. }) => {}
        other => panic!("expected Error::Config for {config:?}, got {other:?}"),
    }
}

#[test]
fn min_len_above_max_len_is_a_config_error() {
    assert_config_error(TemporalOrderConfig {
        min_len: 111,
        ..TemporalOrderConfig::default()
    });
}

#[test]
fn t2_range_reaching_the_end_is_a_config_error() {
    assert_config_error(TemporalOrderConfig {
        min_len: 61,
        ..TemporalOrderConfig::default()
    });
}

#[test]
fn overlapping_t1_and_t2_ranges_are_a_config_error() {
    assert_config_error(TemporalOrderConfig {
        t1: (10, 50),
        ..TemporalOrderConfig::default()
    });
}

#[test]
fn t1_at_position_zero_is_a_config_error() {
    assert_config_error(TemporalOrderConfig {
        t1: (0, 20),
        ..TemporalOrderConfig::default()
    });
}

#[test]
fn default_config_is_valid_and_the_papers() {
    let config = TemporalOrderConfig::default();
    config.validate().unwrap();
    assert_eq!(
        (config.min_len, config.max_len, config.t1, config.t2),
        (100, 110, (10, 20), (50, 60))
    );
}

#[test]
fn train_test_is_reproducible_and_the_sets_differ() {
    let config = TemporalOrderConfig::default();
    let (train, test) = train_test(&config, 20, 20, 9).unwrap();
    let (train2, test2) = train_test(&config, 20, 20, 9).unwrap();
    assert_eq!((&train, &test), (&train2, &test2));
    assert_ne!(train.inputs, test.inputs);
}

#[test]
fn train_test_test_set_does_not_depend_on_train_size() {
    let config = TemporalOrderConfig::default();
    let (_, test_a) = train_test(&config, 10, 20, 9).unwrap();
    let (_, test_b) = train_test(&config, 30, 20, 9).unwrap();
    assert_eq!(test_a, test_b);
}

#[test]
fn gather_copies_the_chosen_sequences_and_labels() {
    let data = default_set(10, 10);
    let mut x = Array3::zeros((3, 110, 8));
    let mut labels = vec![99];
    data.gather(&[7, 2, 7], &mut x, &mut labels).unwrap();
    assert_eq!(labels, vec![data.labels[7], data.labels[2], data.labels[7]]);
    for (row, i) in [7, 2, 7].into_iter().enumerate() {
        assert_eq!(
            x.index_axis(Axis(0), row),
            data.inputs.index_axis(Axis(0), i)
        );
    }
}

#[test]
fn gather_with_wrongly_shaped_x_is_a_shape_error() {
    let data = default_set(10, 11);
    let mut x = Array3::zeros((2, 110, 8));
    match data.gather(&[0, 1, 2], &mut x, &mut Vec::new()) {
        Err(Error::Shape {
            expected, actual, ..
        }) => {
            assert_eq!(expected, vec![3, 110, 8]);
            assert_eq!(actual, vec![2, 110, 8]);
        }
        other => panic!("expected Error::Shape, got {other:?}"),
    }
}

#[test]
fn gather_with_out_of_range_index_is_a_data_error() {
    let data = default_set(10, 12);
    let mut x = Array3::zeros((1, 110, 8));
    match data.gather(&[10], &mut x, &mut Vec::new()) {
        Err(Error::Data(message)) => assert!(message.contains("index 10"), "{message}"),
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

#[test]
fn dataset_with_label_out_of_range_is_a_data_error() {
    let inputs = Array3::zeros((2, 3, 4));
    match SequenceDataset::new("tiny", inputs, vec![0, 4], 4) {
        Err(Error::Data(message)) => assert!(message.contains("label 4"), "{message}"),
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

#[test]
fn dataset_with_label_count_mismatch_is_a_data_error() {
    let inputs = Array3::zeros((2, 3, 4));
    assert!(matches!(
        SequenceDataset::new("tiny", inputs, vec![0], 4),
        Err(Error::Data(_))
    ));
}

#[test]
fn lengths_outside_one_to_t_are_an_error_naming_the_sequence() {
    let data = default_set(3, 9);
    let err = data.clone().with_lengths(vec![110, 0, 5]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SequenceLength {
                sequence: 1,
                length: 0,
                seq: 110
            }
        ),
        "{err:?}"
    );
    let err = data.with_lengths(vec![110, 5]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err:?}");
}
