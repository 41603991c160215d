# The paired comparison of two reward models, per framing: each category's per-prompt mean
# rank difference A - B and its paired t-test over prompts, and the t-test of the per-prompt
# contrast (first category minus second). Both models rank the same words, so the two
# categories' differences mirror each other and the three p-values are one test.
# Usage: Rscript paired_t.R rows.csv "model A" "model B" out.json
suppressMessages(library(jsonlite))
a <- commandArgs(TRUE)
d <- read.csv(a[1], stringsAsFactors = FALSE)
A <- d[d$model == a[2], ]; B <- d[d$model == a[3], ]
m <- merge(A, B, by = c("prompt_id", "response", "category", "framing"), suffixes = c("_a", "_b"))
m$diff <- m$rank_a - m$rank_b
out <- lapply(c("positive", "negative"), function(fr) {
  x <- m[m$framing == fr, ]
  cats <- sort(unique(x$category))
  per <- sapply(cats, function(cc) tapply(x$diff[x$category == cc], x$prompt_id[x$category == cc], mean))
  list(framing = fr, categories = cats,
       mean_difference = setNames(as.list(sapply(cats, function(cc) mean(x$diff[x$category == cc]))), cats),
       p_t = setNames(as.list(sapply(cats, function(cc) t.test(per[, cc])$p.value)), cats),
       contrast = mean(x$diff[x$category == cats[1]]) - mean(x$diff[x$category == cats[2]]),
       p_contrast = t.test(per[, cats[1]] - per[, cats[2]])$p.value, n_prompts = nrow(per))
})
writeLines(toJSON(list(model_a = a[2], model_b = a[3], framings = out, version = R.version.string),
                  auto_unbox = TRUE, digits = 12, pretty = TRUE), a[4])
