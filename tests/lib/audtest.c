/*
 * audtest.c - test-only signal helpers (see audtest.h). Pure functions.
 */
#include "audtest.h"

#include <math.h>

void audt_tone(int16_t *out, size_t n, double hz, int rate, double amp, size_t start)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (int16_t)lrint(amp * sin(2.0 * M_PI * hz * (double)(i + start) / rate));
}

double audt_power(const int16_t *x, size_t n, double hz, int rate)
{
    double w = 2.0 * M_PI * hz / rate, c = 2.0 * cos(w);
    double s1 = 0, s2 = 0;

    for (size_t i = 0; i < n; i++) {
        double s0 = x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    double p = s1 * s1 + s2 * s2 - c * s1 * s2;
    return n ? p / ((double)n * (double)n) : 0;
}

double audt_dominant_hz(const int16_t *x, size_t n, int rate, double lo, double hi, double step_hz)
{
    double best = lo, bestp = -1;

    for (double f = lo; f <= hi; f += step_hz) {
        double p = audt_power(x, n, f, rate);
        if (p > bestp) {
            bestp = p;
            best = f;
        }
    }
    return best;
}

double audt_rms(const int16_t *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0;
}

double audt_zc_hz(const int16_t *x, size_t n, int rate)
{
    size_t zc = 0;
    for (size_t i = 1; i < n; i++)
        if ((x[i - 1] < 0) != (x[i] < 0))
            zc++;
    return n > 1 ? (double)zc / 2.0 * rate / (double)(n - 1) : 0;
}
