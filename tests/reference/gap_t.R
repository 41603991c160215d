# The family gap's t test (core/uncertainty.py gap_t_test), computed literally and
# independently: each model's value = mean over prompts of its median rank over the words;
# the prompts-and-words part of the variance = var() of the gap over the committed draws of
# prompts and words (models fixed: every model once), each draw recomputed by repeating the
# drawn rows; se^2 = var(Gemma values)/n_G + var(Llama values)/n_L + that variance; df by
# Welch-Satterthwaite with min(prompts, words) - 1 df for the bootstrap part; interval
# gap +- qt(0.975, df) se; p = 2 pt(-|gap|/se, df). Also R's own Welch t.test of the models'
# values (the same test with no prompts-and-words part).
# Usage: Rscript gap_t.R rows.csv draws.csv out.json
suppressMessages(library(jsonlite))
a <- commandArgs(TRUE)
d <- read.csv(a[1], stringsAsFactors = FALSE)
dr <- read.csv(a[2], stringsAsFactors = FALSE)
models <- sort(unique(d$model))
family <- sapply(models, function(m) d$family[d$model == m][1])
model_value <- function(m, prompts, words) {
  mean(sapply(prompts, function(p) {
    x <- d[d$model == m & d$prompt_id == p, ]
    median(unlist(lapply(words, function(w) x$rank[x$response == w])), na.rm = TRUE)
  }), na.rm = TRUE)
}
gap_of <- function(prompts, words) {
  v <- sapply(models, model_value, prompts = prompts, words = words)
  mean(v[family == "Llama"]) - mean(v[family == "Gemma"])
}
expand <- function(r, kind) { x <- dr[dr$rep == r & dr$kind == kind, ]; rep(x$unit, x$count) }
prompts <- sort(unique(d$prompt_id)); words <- sort(unique(d$response))
values <- sapply(models, model_value, prompts = prompts, words = words)
g <- values[family == "Gemma"]; l <- values[family == "Llama"]
gap <- mean(l) - mean(g)
reps <- sort(unique(dr$rep))
draws <- sapply(reps, function(r) gap_of(expand(r, "prompt"), expand(r, "word")))
va <- var(g) / length(g); vb <- var(l) / length(l); vpw <- var(draws)
pw_df <- min(length(prompts), length(words)) - 1
se <- sqrt(va + vb + vpw)
df <- (va + vb + vpw)^2 / (va^2 / (length(g) - 1) + vb^2 / (length(l) - 1) + vpw^2 / pw_df)
q <- qt(0.975, df)
welch <- t.test(l, g, var.equal = FALSE)
out <- list(rows = basename(a[1]), draws = basename(a[2]), values = as.list(values), gap = gap,
            draw_gaps = draws, v_prompts_words = vpw, prompt_word_df = pw_df, se = se, df = df,
            ci_low = gap - q * se, ci_high = gap + q * se, p = 2 * pt(-abs(gap) / se, df),
            welch = list(t = unname(welch$statistic), df = unname(welch$parameter), p = welch$p.value,
                         ci_low = welch$conf.int[1], ci_high = welch$conf.int[2]),
            version = R.version.string)
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, pretty = TRUE), a[3])
