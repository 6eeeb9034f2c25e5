/*
 * audtest.h - test-only signal helpers for the audio and Gemini tests:
 * tone generation, Goertzel power, dominant frequency, RMS.
 */
#ifndef VWS_AUDTEST_H
#define VWS_AUDTEST_H

#include <stddef.h>
#include <stdint.h>

/* n samples of amp*sin(2*pi*hz*(i+start)/rate). */
void audt_tone(int16_t *out, size_t n, double hz, int rate, double amp, size_t start);
/* Goertzel power of hz in x (normalised so a full-scale sine gives ~amp^2/4). */
double audt_power(const int16_t *x, size_t n, double hz, int rate);
/* Frequency (step_hz grid, lo..hi) with the most power. */
double audt_dominant_hz(const int16_t *x, size_t n, int rate, double lo, double hi, double step_hz);
/* Root mean square. */
double audt_rms(const int16_t *x, size_t n);
/* Zero-crossing frequency estimate (crossings/2 per second). */
double audt_zc_hz(const int16_t *x, size_t n, int rate);

#endif
