locals {
  origin_id = "${var.platform}-${var.service_name}"
  # One year: whitenoise serves static files under content-hashed names, so a changed file has a new URL.
  static_ttl = 31536000
  # Public API lists carry `Cache-Control: public, max-age=60`; CloudFront keeps them at most that long.
  api_max_ttl = 60
}

# Static files: cached for a year whatever the origin says, keyed on the path only.
resource "aws_cloudfront_cache_policy" "static" {
  name        = "${var.service_name}-static"
  comment     = "Hashed static files, cached for a year"
  min_ttl     = local.static_ttl
  default_ttl = local.static_ttl
  max_ttl     = local.static_ttl

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true

    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "none"
    }
  }
}

# API: the origin's Cache-Control decides (min 0, default 0: no header, no caching), capped at 60 s. The
# Authorization header is part of the key, so signed-in requests reach the origin and never share an entry.
resource "aws_cloudfront_cache_policy" "api" {
  name        = "${var.service_name}-api"
  comment     = "API responses: honour origin Cache-Control, at most 60 s"
  min_ttl     = 0
  default_ttl = 0
  max_ttl     = local.api_max_ttl

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_brotli = true
    enable_accept_encoding_gzip   = true

    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "whitelist"
      headers {
        items = ["Authorization"]
      }
    }
    query_strings_config {
      query_string_behavior = "all"
    }
  }
}

# Everything the viewer sent except Host: App Runner and the Express load balancer route on their own host name.
data "aws_cloudfront_origin_request_policy" "all_viewer_except_host" {
  name = "Managed-AllViewerExceptHostHeader"
}

resource "aws_cloudfront_distribution" "app" {
  enabled         = true
  is_ipv6_enabled = true
  comment         = "${var.service_name}: ${local.apprunner ? "App Runner" : "ECS Express Mode"} behind CloudFront"
  price_class     = var.cloudfront_price_class
  http_version    = "http2and3"

  origin {
    origin_id   = local.origin_id
    domain_name = local.origin_domain

    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  default_cache_behavior {
    target_origin_id         = local.origin_id
    viewer_protocol_policy   = "https-only"
    allowed_methods          = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods           = ["GET", "HEAD"]
    compress                 = true
    cache_policy_id          = aws_cloudfront_cache_policy.api.id
    origin_request_policy_id = data.aws_cloudfront_origin_request_policy.all_viewer_except_host.id
  }

  ordered_cache_behavior {
    path_pattern           = "/static/*"
    target_origin_id       = local.origin_id
    viewer_protocol_policy = "https-only"
    allowed_methods        = ["GET", "HEAD"]
    cached_methods         = ["GET", "HEAD"]
    compress               = true
    cache_policy_id        = aws_cloudfront_cache_policy.static.id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
    minimum_protocol_version       = "TLSv1.2_2021"
  }

  # checkov:skip=CKV_AWS_174:The *.cloudfront.net default certificate; with your own domain and ACM certificate, TLSv1.2_2021 above applies.
  # checkov:skip=CKV2_AWS_42:The *.cloudfront.net name needs no certificate of its own (docs/deploying.md: your own domain).
  # checkov:skip=CKV_AWS_68:AWS WAF is billed per request and its rules depend on the API; attach a web ACL with web_acl_id.
  # checkov:skip=CKV2_AWS_47:No web ACL is attached (CKV_AWS_68); the API runs no Java.
  # checkov:skip=CKV_AWS_86:django-prodkit's access line logs every request the origin serves; CloudFront's logs need an S3 bucket with ACLs.
  # checkov:skip=CKV_AWS_374:A public API, served to every country.
  # checkov:skip=CKV_AWS_310:Two regions fail over in Route 53 on the origin name (multi_region.tf), for every method; an origin group would fail over GET, HEAD and OPTIONS only.
  # checkov:skip=CKV_AWS_305:An API has no index document; / is a 404 answered by Django.
  # checkov:skip=CKV2_AWS_32:Django's SecurityMiddleware (security_hardening) sets HSTS, nosniff and Referrer-Policy on every response.
}
