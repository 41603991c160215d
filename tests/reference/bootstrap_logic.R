# The stricter bootstrap's statistic computed literally: for each draw, repeat the drawn
# models (within family), prompts and words as often as drawn, take each (model, prompt)'s
# median rank over the drawn words, each model's mean over the drawn prompts, each family's
# mean over the drawn models; gap = Llama - Gemma. Then the 95% percentile interval (type 7
# quantiles) and p = the smallest alpha whose percentile interval excludes zero, found by
# bisection (not by core's closed form).
# Usage: Rscript bootstrap_logic.R rows.csv draws.csv out.json
suppressMessages(library(jsonlite))
a <- commandArgs(TRUE)
d <- read.csv(a[1], stringsAsFactors = FALSE)
dr <- read.csv(a[2], stringsAsFactors = FALSE)
gap_of <- function(models, prompts, words) {
  fam_mean <- function(f) {
    ms <- models[models %in% unique(d$model[d$family == f])]
    mean(sapply(ms, function(m) {
      mean(sapply(prompts, function(p) {
        x <- d[d$model == m & d$prompt_id == p, ]
        median(unlist(lapply(words, function(w) x$rank[x$response == w])), na.rm = TRUE)
      }), na.rm = TRUE)
    }))
  }
  fam_mean("Llama") - fam_mean("Gemma")
}
expand <- function(r, kind) { x <- dr[dr$rep == r & dr$kind == kind, ]; rep(x$unit, x$count) }
observed <- gap_of(sort(unique(d$model)), sort(unique(d$prompt_id)), sort(unique(d$response)))
reps <- sort(unique(dr$rep))
gaps <- sapply(reps, function(r) gap_of(expand(r, "model"), expand(r, "prompt"), expand(r, "word")))
excludes <- function(alpha) { q <- quantile(gaps, c(alpha / 2, 1 - alpha / 2), type = 7, names = FALSE); q[1] > 0 || q[2] < 0 }
p <- if (!excludes(1)) 1 else if (excludes(0)) 0 else {
  lo <- 0; hi <- 1
  for (i in 1:200) { mid <- (lo + hi) / 2; if (excludes(mid)) hi <- mid else lo <- mid }
  hi
}
ci <- quantile(gaps, c(0.025, 0.975), type = 7, names = FALSE)
out <- list(rows = basename(a[1]), draws = basename(a[2]), observed = observed, gaps = gaps,
            ci_low = ci[1], ci_high = ci[2], p = p, version = R.version.string)
writeLines(toJSON(out, auto_unbox = TRUE, digits = 12, pretty = TRUE), a[3])
